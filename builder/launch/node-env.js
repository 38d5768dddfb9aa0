// Preloaded (node --require) by the app/bin/<name> scripts of a builder bundle that run a
// Node.js app on the bundle's own node; shipped as app/share/launch/node-env.js.
//
// The script put the image's LD_LIBRARY_PATH, LD_PRELOAD and LD_AUDIT aside as
// BUILDER_LAUNCH_SAVED_<name>, so the bundled node was loaded without them (an image's library
// directories can hold an older libstdc++ than node needs). Put them back into process.env:
// what the app starts (terminals, tasks, language servers) gets the image's values, e.g. the
// CUDA library paths of an NGC image. Set but empty stays set but empty.
//
// Node processes the app forks (code-server's server, VS Code's extension and pty hosts) would
// otherwise be loaded with them: child_process.fork moves them aside again for the child and
// preloads this file there too, so every node of the bundle starts clean and every other
// program sees the image's environment.
"use strict";
const childProcess = require("child_process");
const SAVED = "BUILDER_LAUNCH_SAVED_";
const LOADER = ["LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT"];

for (const name of LOADER) {
  const saved = process.env[SAVED + name];
  if (saved !== undefined) {
    process.env[name] = saved;
    delete process.env[SAVED + name];
  }
}

if (!childProcess.fork.builderNodeEnv) {
  const fork = childProcess.fork;
  const guarded = function (modulePath, args, options) {
    if (args === undefined || args === null) {
      args = [];
    } else if (!Array.isArray(args)) {
      options = args;
      args = [];
    }
    options = Object.assign({}, options);
    const env = Object.assign({}, options.env || process.env);
    for (const name of LOADER) {
      delete env[SAVED + name];
      if (env[name] !== undefined) {
        env[SAVED + name] = env[name];
        delete env[name];
      }
    }
    options.env = env;
    const execArgv = options.execArgv || process.execArgv;
    const preloaded = execArgv.some((arg, i) =>
      (arg === "--require" || arg === "-r") && execArgv[i + 1] === __filename);
    options.execArgv = preloaded ? execArgv : ["--require", __filename, ...execArgv];
    return fork.call(this, modulePath, args, options);
  };
  guarded.builderNodeEnv = true;
  childProcess.fork = guarded;
  require("module").syncBuiltinESMExports(); // ES modules importing child_process see it too
}
