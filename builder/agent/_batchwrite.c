/* builder.agent._batchwrite: the system calls of a batch of files, without the GIL.
 *
 * write_files(batch) -> list of (bytes on disk, inode, errno, errno of the link)
 *
 * batch: a tuple of (path: bytes, mode: int, pieces: tuple of buffers, object: bytes or None).
 * For each file, in order: open(path, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode), write
 * every piece whole, fstat, fchmod when a umask took bits away; with an object path: set the
 * modification time to 1980-01-01 (the store's stamp) and link(path, object), whose errno is
 * reported, not raised (the caller decides: an object already there, another file system, ...);
 * then close. The first file that cannot be written stops the batch: its errno is in its row and
 * the files after it get no row. Nothing here decides what may be written: every name, type,
 * mode and size was checked by builder.agent.extract before it got here (the directories exist,
 * made by that process; O_EXCL|O_NOFOLLOW refuse a name that is already anything, a symlink
 * included). Written for issue 16.1: the interpreter lock is released for the whole batch, so
 * the Python thread checks the next members meanwhile.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAMP 315532800 /* 1980-01-01T00:00:00Z: builder.agent.objects.STAMP */

typedef struct {
    const char *path;
    const char *object; /* NULL: no object link, no stamp */
    int mode;
    Py_ssize_t npieces;
    Py_buffer *pieces;
    long long bytes; /* st_blocks * 512 */
    unsigned long long ino;
    int err;
    int link_err;
} item_t;

static const char *c_path(PyObject *value, const char *what) {
    char *text;
    Py_ssize_t size;
    if (!PyBytes_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes", what);
        return NULL;
    }
    if (PyBytes_AsStringAndSize(value, &text, &size) < 0) return NULL;
    if ((size_t)size != strlen(text)) {
        PyErr_Format(PyExc_ValueError, "%s: embedded null byte", what);
        return NULL;
    }
    return text;
}

static int take(item_t *item, PyObject *row) {
    PyObject *path, *pieces, *object;
    int mode;
    if (!PyTuple_Check(row) || !PyArg_ParseTuple(row, "OiOO", &path, &mode, &pieces, &object)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a row must be a tuple");
        return -1;
    }
    if (mode & ~07777) {
        PyErr_SetString(PyExc_ValueError, "mode out of range");
        return -1;
    }
    item->mode = mode;
    if (!(item->path = c_path(path, "path"))) return -1;
    if (object != Py_None && !(item->object = c_path(object, "object"))) return -1;
    if (!PyTuple_Check(pieces)) {
        PyErr_SetString(PyExc_TypeError, "pieces must be a tuple");
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(pieces);
    item->pieces = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Py_buffer));
    if (!item->pieces) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < count; j++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(pieces, j), &item->pieces[j], PyBUF_SIMPLE) < 0)
            return -1;
        item->npieces = j + 1;
    }
    return 0;
}

static int write_all(int fd, const char *data, Py_ssize_t left) {
    while (left > 0) {
        ssize_t done = write(fd, data, (size_t)left);
        if (done < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        data += done;
        left -= done;
    }
    return 0;
}

static void write_one(item_t *item) {
    int fd;
    do {
        fd = open(item->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, item->mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        item->err = errno;
        return;
    }
    struct stat st;
    for (Py_ssize_t j = 0; j < item->npieces && !item->err; j++)
        item->err = write_all(fd, item->pieces[j].buf, item->pieces[j].len);
    if (!item->err && fstat(fd, &st) < 0) item->err = errno;
    if (!item->err && (int)(st.st_mode & 07777) != item->mode && fchmod(fd, item->mode) < 0)
        item->err = errno;
    if (!item->err && item->object) {
        const struct timespec stamp[2] = {{STAMP, 0}, {STAMP, 0}};
        if (futimens(fd, stamp) < 0)
            item->err = errno;
        else if (link(item->path, item->object) < 0)
            item->link_err = errno;
    }
    if (close(fd) < 0 && !item->err && errno != EINTR) item->err = errno;
    if (!item->err) {
        item->bytes = (long long)st.st_blocks * 512;
        item->ino = (unsigned long long)st.st_ino;
    }
}

static PyObject *write_files(PyObject *module, PyObject *batch) {
    (void)module;
    if (!PyTuple_Check(batch)) {
        PyErr_SetString(PyExc_TypeError, "write_files() takes a tuple of rows");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(batch), done = 0, taken = 0;
    item_t *items = PyMem_Calloc(count ? (size_t)count : 1, sizeof(item_t));
    PyObject *result = NULL;
    if (!items) return PyErr_NoMemory();
    for (; taken < count; taken++)
        if (take(&items[taken], PyTuple_GET_ITEM(batch, taken)) < 0) {
            taken++; /* its buffers taken so far are released below */
            goto out;
        }
    Py_BEGIN_ALLOW_THREADS
    while (done < count) {
        write_one(&items[done++]);
        if (items[done - 1].err) break;
    }
    Py_END_ALLOW_THREADS
    if (!(result = PyList_New(done))) goto out;
    for (Py_ssize_t i = 0; i < done; i++) {
        PyObject *row = Py_BuildValue("(LKii)", items[i].bytes, items[i].ino, items[i].err,
                                      items[i].link_err);
        if (!row) {
            Py_CLEAR(result);
            goto out;
        }
        PyList_SET_ITEM(result, i, row);
    }
out:
    for (Py_ssize_t i = 0; i < taken; i++) {
        for (Py_ssize_t j = 0; j < items[i].npieces; j++) PyBuffer_Release(&items[i].pieces[j]);
        PyMem_Free(items[i].pieces);
    }
    PyMem_Free(items);
    return result;
}

static PyMethodDef methods[] = {
    {"write_files", write_files, METH_O,
     "write_files(batch) -> [(bytes on disk, inode, errno, link errno), ...]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_batchwrite",
    .m_doc = "The system calls of a batch of checked files, without the GIL (issue 16.1).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__batchwrite(void) { return PyModule_Create(&module); }
