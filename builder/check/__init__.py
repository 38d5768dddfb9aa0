"""Build-time checks (Nix's installCheck) on the finished tree, before it is archived.

The pipeline calls two functions::

    plan = plan_checks(recipe, bundle_root=..., python="python/bin/python3.11",
                       site_packages=PurePosixPath("python/lib/python3.11/site-packages"))
    report = run_checks(plan, bundle_root=..., source_date_epoch=..., scratch=stage, log=log)

``plan_checks`` reads the tree (RECORD files, service-def.json) into pure data; ``run_checks``
proves (a) every installed distribution's import roots import under ``python -I -B``, (b) the
recipe's ``[checks] commands`` exit 0, (c) an HTTP ``[service]`` started from service-def.json
answers on loopback, all from a path other than the staging directory and without writing into
the tree. A failure raises ``BuilderError`` (what, where, hint, output tail).
"""

from builder.check.model import CheckPlan, CheckReport, CheckResult
from builder.check.plan import plan_checks
from builder.check.run import run_checks

__all__ = ["CheckPlan", "CheckReport", "CheckResult", "plan_checks", "run_checks"]
