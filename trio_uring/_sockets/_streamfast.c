/* trio_uring._sockets._streamfast: SocketStream's receive_some and send_all in C.

   Why C, and why not cffi
   -----------------------
   On the default data path a busy stream's receive_some and send_all find
   the kernel ready almost every time: each is one non-blocking system call
   and one schedule point. Counted by callgrind on the echo benchmark,
   Trio's scheduler takes about 31,000 instructions of a round trip's two
   schedule points whatever we do; what is ours is the Python around the
   two system calls: two coroutine frames, their argument checks, a
   generator for each schedule point, a memoryview, the socket method
   calls. cffi can make a C function cheap to call, but not a coroutine:
   the schedule point has to be yielded to Trio from the object the caller
   awaits. So this is a small CPython extension whose awaitable does the
   direct attempt and yields Trio's schedule point itself.

   What it does, and what it leaves to Python
   ------------------------------------------
   Only the common case is here: a NativeSocket with no receive-ahead (or
   send op path) in play, a plain size, a task that is not cancelled, and
   a kernel that answers at once. Every other case is handed, unchanged,
   to the Python implementation in stream.py *before anything happened*
   (so it runs from the top, exactly as it always did), or, after the
   system call, to a small Python continuation that does what the Python
   version does from that point on (wait for readiness, or pass the
   schedule point and raise the error). The awaitable then delegates to
   that coroutine the way `await` would: send, throw and close are passed
   through.

   The awaitable's states:

     START      created, not yet awaited: nothing has happened (a call that
                is never awaited receives and sends nothing)
     YIELDED    the system call succeeded, Trio's CancelShieldedCheckpoint
                was yielded; the next send() carries the scheduler's Outcome
     DELEGATING a Python coroutine does the rest
     DONE       finished; awaiting again is a RuntimeError, as for a coroutine

   Trio internals read here (the task's cancel status, its cancel-point
   count, the checkpoint sentinel) are the ones _core/parking.py mirrors;
   stream.py installs this module only where those mirrors hold.
*/

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <structmember.h>
#include <sys/socket.h>

/* What configure() hands us, held for the life of the process. */
static PyObject *native_socket_type;   /* trio_uring.socket.NativeSocket */
static PyObject *run_context;          /* trio's GLOBAL_RUN_CONTEXT */
static PyObject *shielded;             /* trio's CancelShieldedCheckpoint */
static PyObject *counts;               /* _sockets.counts.COUNTS (a dict) */
static PyObject *receive_py;           /* stream.receive_some (Python) */
static PyObject *receive_rest_py;      /* stream._receive_rest */
static PyObject *send_py;              /* stream.send_all (Python) */
static PyObject *send_rest_py;         /* stream._send_rest_all */
static PyObject *translate_py;         /* stream._translated */
static PyTypeObject *value_type;       /* outcome.Value */
static Py_ssize_t default_receive_size;
/* The largest max_bytes taken here; larger ones go the Python way. */
#define MAX_FAST_RECEIVE (16 * 1024 * 1024)

/* Interned attribute names. */
static PyObject *s_socket, *s_sock, *s_ahead, *s_ahead_unchecked, *s_task,
    *s_cancel_status, *s_effectively_cancelled, *s_runner, *s_main_task,
    *s_ki_pending, *s_cancel_points, *s_unwrap, *s_direct, *s_shut_wr,
    *s_detector, *s_held, *s_batched, *s_fileno, *s_throw, *s_close,
    *s_wait, *s_error, *s_sent;

enum { START, YIELDED, DELEGATING, DONE };
enum { RECEIVE, SEND };

typedef struct {
    PyObject_HEAD
    int state;
    int kind;
    PyObject *stream;
    PyObject *arg;        /* RECEIVE: max_bytes (or None); SEND: the data */
    PyObject *result;     /* YIELDED RECEIVE: the bytes received */
    PyObject *detector;   /* YIELDED SEND: the conflict detector we hold */
    PyObject *inner;      /* DELEGATING: the Python coroutine */
    Py_buffer view;       /* YIELDED SEND: the data's buffer, held as the
                             Python version holds its memoryview */
    int has_view;
} FastCall;

static PyTypeObject FastCall_Type;

/* ---- small helpers ------------------------------------------------------ */

static PyObject *one;  /* 1, for the counters */

/* The exception being raised, taken (normalized, its traceback attached),
   or NULL if none: PyErr_GetRaisedException before 3.12. */
static PyObject *take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* Raise `exc` again (the reference is stolen): PyErr_SetRaisedException. */
static void give_exception(PyObject *exc)
{
    if (exc == NULL)
        return;
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}

/* 1 if obj.name is True, 0 if false, -1 on error. */
static int attr_true(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    int t;
    if (v == NULL)
        return -1;
    t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* Trio's Task, CancelStatus and Runner, and outcome's Value, are attrs
   classes with __slots__: each attribute read here is a member descriptor
   at a fixed offset in the object. PyObject_GetAttr finds it through the
   type's method cache every time; a SlotCache remembers, for one
   attribute, the type it was looked up on and the offset, and reads the
   slot directly while the object is exactly of that type. Anything else
   (another type, a descriptor that is not a plain object slot, an empty
   slot) takes PyObject_GetAttr, which is always right. The type is held,
   so its address is never reused by another. */
typedef struct {
    PyObject *name;
    PyTypeObject *type;   /* NULL: not looked up yet (or not a slot) */
    Py_ssize_t offset;
    int tried;
} SlotCache;

static int slot_lookup(SlotCache *sc, PyObject *obj)
{
    PyObject *descr;
    PyMemberDef *def;

    sc->tried = 1;
    descr = _PyType_Lookup(Py_TYPE(obj), sc->name);  /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type))
        return 0;
    def = ((PyMemberDescrObject *)descr)->d_member;
    if (def->type != T_OBJECT_EX || (def->flags & READONLY))
        return 0;
    Py_INCREF(Py_TYPE(obj));
    sc->type = Py_TYPE(obj);
    sc->offset = def->offset;
    return 1;
}

/* obj.<name>, a new reference (NULL with an exception set). */
static PyObject *slot_get(SlotCache *sc, PyObject *obj)
{
    if (Py_TYPE(obj) == sc->type || (!sc->tried && slot_lookup(sc, obj))) {
        PyObject *v = *(PyObject **)((char *)obj + sc->offset);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(obj, sc->name);
}

/* obj.<name> = value: 0, or -1 with an exception set. */
static int slot_set(SlotCache *sc, PyObject *obj, PyObject *value)
{
    if (Py_TYPE(obj) == sc->type || (!sc->tried && slot_lookup(sc, obj))) {
        PyObject **where = (PyObject **)((char *)obj + sc->offset);
        PyObject *old = *where;
        Py_INCREF(value);
        *where = value;
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(obj, sc->name, value);
}

static SlotCache c_cancel_status, c_effectively_cancelled, c_runner, c_main_task,
    c_ki_pending, c_cancel_points, c_unwrapped, c_value;

/* 1 if obj.<name> (through the cache) is true, 0 if false, -1 on error. */
static int slot_true(SlotCache *sc, PyObject *obj)
{
    PyObject *v = slot_get(sc, obj);
    int t;
    if (v == NULL)
        return -1;
    t = v == Py_True ? 1 : v == Py_False ? 0 : PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* outcome.unwrap(): the value, or NULL with the error raised. A Value
   (what Trio resumes a schedule point with) is unwrapped in place, as
   its own unwrap() does: marked used (a second unwrap raises
   AlreadyUsedError), its value returned. */
static PyObject *unwrap(PyObject *outcome)
{
    if (Py_TYPE(outcome) == value_type) {
        PyObject *used = slot_get(&c_unwrapped, outcome);
        if (used == NULL)
            return NULL;
        Py_DECREF(used);
        if (used == Py_False) {
            if (slot_set(&c_unwrapped, outcome, Py_True) < 0)
                return NULL;
            return slot_get(&c_value, outcome);
        }
    }
    return PyObject_CallMethodNoArgs(outcome, s_unwrap);
}

/* parking.uncancelled(), side effect included: 1 (the cancel point is
   counted, go on), 0 (cancelled, or KeyboardInterrupt pending on the main
   task: the Python version must run, and raises), -1 on error. */
static int uncancelled(void)
{
    PyObject *task, *status, *runner, *main_task, *points, *more;
    int cancelled, ret = -1;

    task = PyObject_GetAttr(run_context, s_task);
    if (task == NULL)
        return -1;
    status = slot_get(&c_cancel_status, task);
    if (status == NULL)
        goto out;
    cancelled = slot_true(&c_effectively_cancelled, status);
    Py_DECREF(status);
    if (cancelled != 0) {
        ret = cancelled < 0 ? -1 : 0;
        goto out;
    }
    runner = slot_get(&c_runner, task);
    if (runner == NULL)
        goto out;
    main_task = slot_get(&c_main_task, runner);
    if (main_task == NULL) {
        Py_DECREF(runner);
        goto out;
    }
    Py_DECREF(main_task);  /* only compared, and the runner holds it */
    if (main_task == task) {
        int ki = slot_true(&c_ki_pending, runner);
        if (ki != 0) {
            Py_DECREF(runner);
            ret = ki < 0 ? -1 : 0;
            goto out;
        }
    }
    Py_DECREF(runner);
    points = slot_get(&c_cancel_points, task);
    if (points == NULL)
        goto out;
    more = PyNumber_Add(points, one);
    Py_DECREF(points);
    if (more == NULL)
        goto out;
    ret = slot_set(&c_cancel_points, task, more) < 0 ? -1 : 1;
    Py_DECREF(more);
out:
    Py_DECREF(task);
    return ret;
}

/* COUNTS["direct"] += 1 */
static int count_direct(void)
{
    PyObject *old = PyDict_GetItemWithError(counts, s_direct), *new;
    int ret;
    if (old == NULL) {
        if (PyErr_Occurred())
            return -1;
        new = PyLong_FromLong(1);
    } else {
        new = PyNumber_Add(old, one);
    }
    if (new == NULL)
        return -1;
    ret = PyDict_SetItem(counts, s_direct, new);
    Py_DECREF(new);
    return ret;
}

/* The socket's fd (-1: closed), or -2 with an exception set. */
static int socket_fd(PyObject *sock)
{
    PyObject *inner = PyObject_GetAttr(sock, s_sock), *r;
    long fd;
    if (inner == NULL)
        return -2;
    r = PyObject_CallMethodNoArgs(inner, s_fileno);
    Py_DECREF(inner);
    if (r == NULL)
        return -2;
    fd = PyLong_AsLong(r);
    Py_DECREF(r);
    if (fd == -1 && PyErr_Occurred())
        return -2;
    return fd < 0 || fd > 0x7fffffff ? -1 : (int)fd;
}

/* Raise StopIteration(value) as a coroutine's return does. */
static PyObject *stop_with(PyObject *value)
{
    PyObject *exc;
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    exc = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static void release_view(FastCall *c)
{
    if (c->has_view) {
        c->has_view = 0;
        PyBuffer_Release(&c->view);
    }
}

/* The detector we hold goes back (send_all's `finally`). */
static int release_detector(FastCall *c)
{
    PyObject *d = c->detector, *pending;
    int ret = 0;
    if (d != NULL) {
        /* Often on an error path: the exception in flight is kept. */
        pending = take_exception();
        c->detector = NULL;
        ret = PyObject_SetAttr(d, s_held, Py_False);
        Py_DECREF(d);
        if (pending != NULL) {
            PyErr_Clear();
            give_exception(pending);
        }
    }
    return ret;
}

/* Start delegating to `coro` (a new reference, or NULL with an exception:
   then the call is DONE) and run it up to its first yield. */
static PyObject *delegate(FastCall *c, PyObject *coro);

/* ---- the direct attempts --------------------------------------------------- */

/* receive_some, first step. */
static PyObject *receive_start(FastCall *c)
{
    PyObject *sock, *ahead, *data;
    Py_ssize_t size;
    int fd, go, e;
    ssize_t n;

    sock = PyObject_GetAttr(c->stream, s_socket);
    if (sock == NULL)
        goto error;
    if ((PyObject *)Py_TYPE(sock) != native_socket_type)
        goto python;
    if (c->arg == Py_None)
        size = default_receive_size;
    else if (PyLong_CheckExact(c->arg)) {
        size = PyLong_AsSsize_t(c->arg);
        if (size == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto python;
        }
    } else
        goto python;
    if (size < 1 || size > MAX_FAST_RECEIVE)
        goto python;
    ahead = PyObject_GetAttr(sock, s_ahead);
    if (ahead == NULL)
        goto error_sock;
    Py_DECREF(ahead);
    if (ahead != Py_None)
        goto python;
    go = attr_true(sock, s_ahead_unchecked);
    if (go < 0)
        goto error_sock;
    if (go)
        goto python;
    fd = socket_fd(sock);
    if (fd == -2)
        goto error_sock;
    if (fd < 0)
        goto python;  /* closed: the Python version says how */
    go = uncancelled();
    if (go < 0)
        goto error_sock;
    if (!go)
        goto python;  /* it raises Cancelled; nothing happened yet */

    /* The cancel point is counted: from here on this is the call. */
    data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL)
        goto error_sock;
    for (;;) {
        /* Non-blocking, so the GIL stays held: no thread waits on us. */
        n = recv(fd, PyBytes_AS_STRING(data), (size_t)size, 0);
        if (n >= 0)
            break;
        e = errno;
        if (e == EINTR) {
            if (PyErr_CheckSignals() < 0) {
                Py_DECREF(data);
                goto error_sock;
            }
            continue;
        }
        Py_DECREF(data);
        if (e == EAGAIN || e == EWOULDBLOCK) {
            PyObject *coro = PyObject_CallFunctionObjArgs(
                receive_rest_py, c->stream, sock, c->arg, s_wait, Py_None, NULL);
            Py_DECREF(sock);
            return delegate(c, coro);
        }
        errno = e;
        PyErr_SetFromErrno(PyExc_OSError);
        {
            PyObject *exc = take_exception();
            PyObject *coro = PyObject_CallFunctionObjArgs(
                receive_rest_py, c->stream, sock, c->arg, s_error, exc, NULL);
            Py_DECREF(exc);
            Py_DECREF(sock);
            return delegate(c, coro);
        }
    }
    Py_DECREF(sock);
    if (n != size && _PyBytes_Resize(&data, n) < 0)
        goto error;
    if (count_direct() < 0) {
        Py_DECREF(data);
        goto error;
    }
    c->result = data;
    c->state = YIELDED;
    Py_INCREF(shielded);
    return shielded;

python:
    Py_XDECREF(sock);
    return delegate(c, PyObject_CallFunctionObjArgs(receive_py, c->stream, c->arg, NULL));
error_sock:
    Py_DECREF(sock);
error:
    c->state = DONE;
    return NULL;
}

/* send_all goes on in Python (stream._send_rest_all) after the system call,
   `how` it went: the detector stays held and the continuation lets go of
   it. Steals nothing; `sock` is released here. */
static PyObject *hand_over(FastCall *c, PyObject *sock, PyObject *how, PyObject *value)
{
    PyObject *coro = PyObject_CallFunctionObjArgs(send_rest_py, c->stream, sock, c->arg,
                                                  how, value, NULL);
    Py_DECREF(sock);
    if (coro == NULL) {
        /* Nothing will let go of the detector: we do. */
        PyObject *exc = take_exception();
        if (release_detector(c) < 0)
            PyErr_Clear();
        give_exception(exc);
        c->state = DONE;
        return NULL;
    }
    Py_CLEAR(c->detector);  /* the continuation's `finally` owns it now */
    return delegate(c, coro);
}

/* send_all, first step. */
static PyObject *send_start(FastCall *c)
{
    PyObject *sock, *detector = NULL, *batched;
    int fd, go, e;
    ssize_t n;

    sock = PyObject_GetAttr(c->stream, s_socket);
    if (sock == NULL)
        goto error;
    if ((PyObject *)Py_TYPE(sock) != native_socket_type)
        goto python;
    go = attr_true(sock, s_shut_wr);
    if (go < 0)
        goto error_sock;
    if (go)
        goto python;
    batched = PyObject_GetAttr(sock, s_batched);
    if (batched == NULL)
        goto error_sock;
    Py_DECREF(batched);
    if (batched != Py_False)
        goto python;  /* not decided yet, or the send op path */
    detector = PyObject_GetAttr(c->stream, s_detector);
    if (detector == NULL)
        goto error_sock;
    go = attr_true(detector, s_held);
    if (go < 0)
        goto error_sock;
    if (go)
        goto python;  /* BusyResourceError, raised there */
    if (!PyObject_CheckBuffer(c->arg))
        goto python;
    if (PyObject_GetBuffer(c->arg, &c->view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        goto python;  /* not a flat buffer: memoryview() says what it is */
    }
    c->has_view = 1;
    if (c->view.len == 0)
        goto python;
    fd = socket_fd(sock);
    if (fd == -2)
        goto error_sock;
    if (fd < 0)
        goto python;
    go = uncancelled();
    if (go < 0)
        goto error_sock;
    if (!go)
        goto python;

    /* Counted as a cancel point: this is the call now. Hold the detector
       as the Python version does, until the call ends. */
    if (PyObject_SetAttr(detector, s_held, Py_True) < 0)
        goto error_sock;
    c->detector = detector;
    detector = NULL;
    for (;;) {
        n = send(fd, c->view.buf, (size_t)c->view.len, 0);
        if (n >= 0)
            break;
        e = errno;
        if (e == EINTR) {
            if (PyErr_CheckSignals() < 0)
                goto error_held;
            continue;
        }
        release_view(c);
        if (e == EAGAIN || e == EWOULDBLOCK)
            return hand_over(c, sock, s_wait, Py_None);
        errno = e;
        PyErr_SetFromErrno(PyExc_OSError);
        {
            PyObject *exc = take_exception(), *r;
            r = hand_over(c, sock, s_error, exc);
            Py_DECREF(exc);
            return r;
        }
    }
    if (n < c->view.len) {
        /* Partial: the rest is Python's (the schedule point first). */
        PyObject *sent, *r;
        release_view(c);
        if (count_direct() < 0 || (sent = PyLong_FromSsize_t(n)) == NULL)
            goto error_held;
        r = hand_over(c, sock, s_sent, sent);
        Py_DECREF(sent);
        return r;
    }
    Py_DECREF(sock);
    if (count_direct() < 0) {
        release_view(c);
        release_detector(c);
        goto error;
    }
    c->state = YIELDED;
    Py_INCREF(shielded);
    return shielded;

python:
    release_view(c);
    Py_XDECREF(detector);
    Py_XDECREF(sock);
    return delegate(c, PyObject_CallFunctionObjArgs(send_py, c->stream, c->arg, NULL));
error_held:
    release_view(c);
    release_detector(c);
error_sock:
    release_view(c);
    Py_XDECREF(detector);
    Py_DECREF(sock);
error:
    c->state = DONE;
    return NULL;
}

/* ---- the coroutine protocol ------------------------------------------------ */

/* Send `value` into the coroutine we delegate to, as `await` would: what
   it yields we yield; when it returns or raises, so do we. */
static PyObject *forward(FastCall *c, PyObject *value)
{
    PyObject *result;
    PySendResult r = PyIter_Send(c->inner, value, &result);

    if (r == PYGEN_NEXT)
        return result;
    c->state = DONE;
    Py_CLEAR(c->inner);
    if (r == PYGEN_RETURN) {
        stop_with(result);
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *delegate(FastCall *c, PyObject *coro)
{
    if (coro == NULL) {
        c->state = DONE;
        return NULL;
    }
    c->inner = coro;
    c->state = DELEGATING;
    return forward(c, Py_None);
}

/* Leave YIELDED with the exception set now (thrown in, or the Outcome's):
   an OSError becomes the stream error the Python version would raise. */
static PyObject *fail_yielded(FastCall *c)
{
    PyObject *exc, *out;

    Py_CLEAR(c->result);
    release_view(c);
    exc = take_exception();
    if (release_detector(c) < 0) {
        /* Cannot happen with Trio's detector; keep the first error. */
        PyErr_Clear();
    }
    c->state = DONE;
    if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError)) {
        give_exception(exc);
        return NULL;
    }
    /* _translated(exc) raises the stream error, chained as stream.py does. */
    out = PyObject_CallOneArg(translate_py, exc);
    Py_DECREF(exc);
    Py_XDECREF(out);
    return NULL;
}

static PyObject *fastcall_send(PyObject *self, PyObject *value)
{
    FastCall *c = (FastCall *)self;
    PyObject *result, *unwrapped;

    switch (c->state) {
    case START:
        if (value != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started coroutine");
            return NULL;
        }
        return c->kind == RECEIVE ? receive_start(c) : send_start(c);
    case YIELDED:
        /* Trio resumes the task with an Outcome: unwrap it, as
           cancel_shielded_checkpoint() does. */
        unwrapped = unwrap(value);
        if (unwrapped == NULL)
            return fail_yielded(c);
        Py_DECREF(unwrapped);
        c->state = DONE;
        release_view(c);
        if (release_detector(c) < 0) {
            Py_CLEAR(c->result);
            return NULL;
        }
        if (c->kind == RECEIVE) {
            result = c->result;
            c->result = NULL;
            stop_with(result);
            Py_DECREF(result);
            return NULL;
        }
        return stop_with(Py_None);
    case DELEGATING:
        return forward(c, value);
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return NULL;
    }
}

static PyObject *fastcall_iternext(PyObject *self)
{
    return fastcall_send(self, Py_None);
}

static PyObject *fastcall_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    FastCall *c = (FastCall *)self;
    PyObject *typ, *val = NULL, *tb = NULL, *method, *result;

    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "throw expected 1 to 3 arguments, got %zd", nargs);
        return NULL;
    }
    typ = args[0];
    if (c->state == DELEGATING) {
        method = PyObject_GetAttr(c->inner, s_throw);
        if (method == NULL)
            return NULL;
        result = PyObject_Vectorcall(method, args, (size_t)nargs, NULL);
        Py_DECREF(method);
        if (result == NULL) {
            PyObject *exc = take_exception();
            c->state = DONE;
            Py_CLEAR(c->inner);
            if (PyErr_GivenExceptionMatches(exc, PyExc_StopIteration)) {
                /* The inner coroutine returned: so do we. */
                PyObject *value = PyObject_GetAttrString(exc, "value");
                Py_DECREF(exc);
                if (value == NULL)
                    return NULL;
                stop_with(value);
                Py_DECREF(value);
                return NULL;
            }
            give_exception(exc);
        }
        return result;
    }
    /* Raise what was thrown, where we stand. */
    if (nargs >= 2)
        val = args[1];
    if (nargs >= 3)
        tb = args[2];
    if (PyExceptionInstance_Check(typ) && (val == NULL || val == Py_None)) {
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    } else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val != NULL ? val : Py_None);
        if (tb != NULL && tb != Py_None) {
            PyObject *exc = take_exception();
            PyException_SetTraceback(exc, tb);
            give_exception(exc);
        }
    } else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes or instances deriving from BaseException");
        return NULL;
    }
    if (c->state == YIELDED)
        return fail_yielded(c);
    c->state = DONE;
    return NULL;
}

static PyObject *fastcall_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    FastCall *c = (FastCall *)self;
    PyObject *r;

    if (c->state == DELEGATING) {
        c->state = DONE;
        r = PyObject_CallMethodNoArgs(c->inner, s_close);
        Py_CLEAR(c->inner);
        return r;
    }
    c->state = DONE;
    Py_CLEAR(c->result);
    release_view(c);
    if (release_detector(c) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *fastcall_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

static PyObject *fastcall_cr_await(PyObject *self, void *Py_UNUSED(closure))
{
    FastCall *c = (FastCall *)self;
    if (c->state == DELEGATING && c->inner != NULL) {
        Py_INCREF(c->inner);
        return c->inner;
    }
    Py_RETURN_NONE;
}

static PyObject *fastcall_cr_frame(PyObject *Py_UNUSED(self), void *Py_UNUSED(closure))
{
    Py_RETURN_NONE;  /* no Python frame of its own (Trio's iter_await_frames) */
}

static int fastcall_traverse(PyObject *self, visitproc visit, void *arg)
{
    FastCall *c = (FastCall *)self;
    Py_VISIT(c->stream);
    Py_VISIT(c->arg);
    Py_VISIT(c->result);
    Py_VISIT(c->detector);
    Py_VISIT(c->inner);
    return 0;
}

static int fastcall_clear(PyObject *self)
{
    FastCall *c = (FastCall *)self;
    release_view(c);
    Py_CLEAR(c->stream);
    Py_CLEAR(c->arg);
    Py_CLEAR(c->result);
    /* Dropped while holding the detector (a task abandoned at the
       schedule point): let go, as the Python version's `finally` does when
       its frame is closed. */
    if (release_detector(c) < 0)
        PyErr_WriteUnraisable(self);
    Py_CLEAR(c->inner);
    return 0;
}

static void fastcall_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    fastcall_clear(self);
    PyObject_GC_Del(self);
}

static PyMethodDef fastcall_methods[] = {
    {"send", fastcall_send, METH_O, "Resume with a value (the coroutine protocol)."},
    {"throw", (PyCFunction)(void (*)(void))fastcall_throw, METH_FASTCALL,
     "Raise an exception where the call stands (the coroutine protocol)."},
    {"close", fastcall_close, METH_NOARGS, "Finish now (the coroutine protocol)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef fastcall_getset[] = {
    {"cr_await", fastcall_cr_await, NULL, "The coroutine this one waits on, or None.", NULL},
    {"cr_frame", fastcall_cr_frame, NULL, "None: no Python frame of its own.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods fastcall_async = {
    .am_await = fastcall_await,
};

static PyTypeObject FastCall_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trio_uring._sockets._streamfast.FastCall",
    .tp_doc = "One receive_some or send_all call: a coroutine written in C.",
    .tp_basicsize = sizeof(FastCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = fastcall_dealloc,
    .tp_traverse = fastcall_traverse,
    .tp_clear = fastcall_clear,
    .tp_as_async = &fastcall_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fastcall_iternext,
    .tp_methods = fastcall_methods,
    .tp_getset = fastcall_getset,
};

/* ---- the module ---------------------------------------------------------- */

static PyObject *make_call(int kind, PyObject *stream, PyObject *arg)
{
    FastCall *c = PyObject_GC_New(FastCall, &FastCall_Type);
    if (c == NULL)
        return NULL;
    c->state = START;
    c->kind = kind;
    Py_INCREF(stream);
    c->stream = stream;
    Py_INCREF(arg);
    c->arg = arg;
    c->result = c->detector = c->inner = NULL;
    c->has_view = 0;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static int configured(void)
{
    if (native_socket_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_streamfast.configure() was not called");
        return 0;
    }
    return 1;
}

/* receive_some(stream, max_bytes=None) as a method: the call's awaitable.
   Any other way of calling it (keywords, the wrong count) is the Python
   version's to answer, with its own errors. */
static PyObject *receive_some(PyObject *Py_UNUSED(m), PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!configured())
        return NULL;
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames)) || nargs < 1 || nargs > 2)
        return PyObject_Vectorcall(receive_py, args, nargsf, kwnames);
    return make_call(RECEIVE, args[0], nargs == 2 ? args[1] : Py_None);
}

/* send_all(stream, data) as a method, likewise. */
static PyObject *send_all(PyObject *Py_UNUSED(m), PyObject *const *args, size_t nargsf,
                          PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!configured())
        return NULL;
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames)) || nargs != 2)
        return PyObject_Vectorcall(send_py, args, nargsf, kwnames);
    return make_call(SEND, args[0], args[1]);
}

/* method(func): func as a method of a class, bound like a Python function. */
static PyObject *method(PyObject *Py_UNUSED(m), PyObject *func)
{
    return PyInstanceMethod_New(func);
}

static PyObject *configure(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *objs[10];
    Py_ssize_t size;
    int i;

    if (!PyArg_ParseTuple(args, "OOOO!OOOOOnO!:configure", &objs[0], &objs[1], &objs[2],
                          &PyDict_Type, &objs[3], &objs[4], &objs[5], &objs[6], &objs[7],
                          &objs[8], &size, &PyType_Type, &objs[9]))
        return NULL;
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "default receive size must be positive");
        return NULL;
    }
    for (i = 0; i < 10; i++)
        Py_INCREF(objs[i]);
    Py_XSETREF(value_type, (PyTypeObject *)objs[9]);
    Py_XSETREF(native_socket_type, objs[0]);
    Py_XSETREF(run_context, objs[1]);
    Py_XSETREF(shielded, objs[2]);
    Py_XSETREF(counts, objs[3]);
    Py_XSETREF(receive_py, objs[4]);
    Py_XSETREF(receive_rest_py, objs[5]);
    Py_XSETREF(send_py, objs[6]);
    Py_XSETREF(send_rest_py, objs[7]);
    Py_XSETREF(translate_py, objs[8]);
    default_receive_size = size;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(NativeSocket, run_context, CancelShieldedCheckpoint, COUNTS, receive_some, "
     "receive_rest, send_all, send_rest, translated, default_receive_size, outcome.Value)"},
    {"receive_some", (PyCFunction)(void (*)(void))receive_some, METH_FASTCALL | METH_KEYWORDS,
     "receive_some($module, self, max_bytes=None)\n--\n\n"
     "SocketStream.receive_some: the awaitable of one call."},
    {"send_all", (PyCFunction)(void (*)(void))send_all, METH_FASTCALL | METH_KEYWORDS,
     "send_all($module, self, data)\n--\n\n"
     "SocketStream.send_all: the awaitable of one call."},
    {"method", method, METH_O, "method(func): func, bound as a method where a class holds it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "trio_uring._sockets._streamfast",
    .m_doc = "SocketStream's receive_some and send_all direct attempts, in C (see stream.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, text)                                  \
    do {                                                   \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return NULL;                                   \
    } while (0)

PyMODINIT_FUNC PyInit__streamfast(void)
{
    PyObject *m;

    if (one == NULL && (one = PyLong_FromLong(1)) == NULL)
        return NULL;
    INTERN(s_socket, "socket");
    INTERN(s_sock, "_sock");
    INTERN(s_ahead, "_ahead");
    INTERN(s_ahead_unchecked, "_ahead_unchecked");
    INTERN(s_task, "task");
    INTERN(s_cancel_status, "_cancel_status");
    INTERN(s_effectively_cancelled, "effectively_cancelled");
    INTERN(s_runner, "_runner");
    INTERN(s_main_task, "main_task");
    INTERN(s_ki_pending, "ki_pending");
    INTERN(s_cancel_points, "_cancel_points");
    INTERN(s_unwrap, "unwrap");
    INTERN(s_direct, "direct");
    INTERN(s_shut_wr, "_did_shutdown_SHUT_WR");
    INTERN(s_detector, "_send_conflict_detector");
    INTERN(s_held, "_held");
    INTERN(s_batched, "_batched");
    INTERN(s_fileno, "fileno");
    INTERN(s_throw, "throw");
    INTERN(s_close, "close");
    INTERN(s_wait, "wait");
    INTERN(s_error, "error");
    INTERN(s_sent, "sent");
    c_cancel_status.name = s_cancel_status;
    c_effectively_cancelled.name = s_effectively_cancelled;
    c_runner.name = s_runner;
    c_main_task.name = s_main_task;
    c_ki_pending.name = s_ki_pending;
    c_cancel_points.name = s_cancel_points;
    INTERN(c_unwrapped.name, "_unwrapped");
    INTERN(c_value.name, "value");
    if (PyType_Ready(&FastCall_Type) < 0)
        return NULL;
    m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FastCall_Type);
    if (PyModule_AddObject(m, "FastCall", (PyObject *)&FastCall_Type) < 0) {
        Py_DECREF(&FastCall_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
