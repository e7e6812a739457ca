"""The grader process's end of the channel: the student's names, as proxies.

Runs in the grader's kernel (the test cells, the references, the tolerances), loaded by file
path before any cell (``execute.py``), bound as ``__nn_proxy__``. For every public name a
student cell bound, the grader's namespace gets

- a ``StudentFunction`` for a callable: calling it sends the arguments as plain data to the
  student process and returns the result as plain data; arguments the student's function
  changed in place are changed here too; an error is raised here with the student's type
  and message;
- the value, fetched once, for a name bound to plain data;
- a ``StudentObject`` (opaque: no attribute, no method) for anything else.

A name the grader's own cells bound (the given code, a test's helper) is never replaced.
When a test rebinds one of the student's names (a hidden test swaps in the reference
``dense_forward`` so that a bug there costs only that exercise), every call made meanwhile
tells the student process: its name is bound, for the call, to a *callback* into this
process (or to the data), so the reference runs here, never there. A grader function passed
as an argument (a test's ``f`` for ``numerical_jacobian``) is a callback the same way.
"""
import importlib.util
import inspect
import os
import socket
from types import ModuleType

_spec = importlib.util.spec_from_file_location("_nn_wire_grader", os.path.join(os.path.dirname(__file__), "wire.py"))
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)


_MISSING = object()


class StudentProcessGone(RuntimeError):
    """The student's process ended (a crash, ``os._exit``, memory, a time limit)."""


class StudentFunction:
    """A callable of the student process; ``name`` for a name of its namespace, else a handle."""

    def __init__(self, grader, name, handle=None):
        self._grader, self._handle = grader, handle
        self.__name__ = self.__qualname__ = name
        self._signature = False

    def __call__(self, *args, **kwargs):
        return self._grader.call(self, args, kwargs)

    @property
    def __signature__(self):
        if self._signature is False:
            self._signature = self._grader.signature(self)
        return self._signature

    def __repr__(self):
        return f"<your function {self.__name__}>"


class StudentObject:
    """A value of the student process that is not plain data: it can be passed back, nothing more."""

    def __init__(self, handle, type_name):
        self._handle, self.type_name = handle, type_name

    def __repr__(self):
        return f"<your {self.type_name} object (not plain data: an array, number, str, tuple, list or dict)>"


class Grader:
    def __init__(self, namespace):
        self.ns, self.installed, self.callbacks, self.baseline, self.sent = namespace, {}, {}, {}, {}
        self.endpoint = self.server = None

    # ------------------------------------------------------------------ setup
    def listen(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)

    def accept(self, timeout=60):
        self.server.settimeout(timeout)
        try:
            conn, _ = self.server.accept()
        finally:
            self.server.close()
            os.unlink(self.path)
        conn.settimeout(None)
        self.endpoint = wire.Endpoint(conn, self._handle_request)

    def install(self, changes):
        """Bind the student's changed names ({name: kind}, from the agent) here, as proxies."""
        for name, kind in changes.items():
            ours = name in self.ns and self.installed.get(name, self) is not self.ns[name]
            if ours or kind == "module":
                continue
            if kind == "deleted":
                self.ns.pop(name, None)
                self.installed.pop(name, None)
                continue
            try:
                value = StudentFunction(self, name) if kind == "callable" else self.get(name)
            except (wire.WireError, StudentProcessGone):
                continue
            self.ns[name] = self.installed[name] = value
        self.mark()

    def end(self):
        """The grader cell is done: the student process stops serving."""
        self.callbacks.clear()
        self.sent = {}
        self.mark()
        if self.endpoint is not None:
            try:
                wire.send(self.endpoint.sock, {"op": "end"})
            except OSError:
                pass

    # ------------------------------------------------------------------ requests
    def _request(self, message, blobs=()):
        if self.endpoint is None:
            raise StudentProcessGone("your code's process is not running: nothing of it can be tested.")
        try:
            return self.endpoint.request(message, blobs)
        except (EOFError, OSError):
            self.endpoint = None
            raise StudentProcessGone(
                "your code's process ended while it was being tested (os._exit, a crash, too much memory "
                "or time): this check, and the later ones, could not run.") from None

    def get(self, name):
        reply, blobs = self._request({"op": "get", "name": name})
        self._raise(reply)
        return wire.decode(reply.get("value"), blobs, self._tagged)

    def signature(self, fn):
        reply, _ = self._request(self._target(fn, {"op": "signature"}))
        params = reply.get("signature")
        if not isinstance(params, list):
            return None
        try:
            return inspect.Signature([inspect.Parameter(str(n), inspect._ParameterKind(int(k))) for n, k in params],
                                     __validate_parameters__=False)
        except (TypeError, ValueError):
            return None

    def overrides(self):
        """({name: value}, [name]): the public names a grader cell rebound since the student's names
        were last installed (a reference swapped in, a counting wrapper, a test's data), which the
        student process sees too during a call, as in one process; sent only when they change
        (the student process keeps them until the cell ends), with the names no longer rebound.
        Modules and what cannot cross are left out."""
        now = {name: value for name, value in self.ns.items()
               if not name.startswith("_") and self.baseline.get(name, _MISSING) is not value
               and not isinstance(value, ModuleType)}
        new = {}
        for name, value in now.items():
            if self.sent.get(name, _MISSING) is value:
                continue
            if callable(value) or wire.can_cross(value):
                new[name] = value
            else:
                now[name] = _MISSING
        gone = [name for name in self.sent if name not in now]
        self.sent = {k: v for k, v in now.items() if v is not _MISSING}
        return new, gone

    def mark(self):
        """The grader's names as they are now: the baseline ``overrides`` compares with."""
        self.baseline = dict(self.ns)

    def call(self, fn, args, kwargs):
        overrides, gone = self.overrides()
        payload, blobs = wire.encode((list(args), kwargs, overrides, gone), self._outgoing)
        reply, rblobs = self._request(self._target(fn, {"op": "call", "payload": payload}), blobs)
        self._raise(reply)
        decoded = wire.decode(reply.get("value"), rblobs, self._tagged)
        if not (isinstance(decoded, tuple) and len(decoded) == 2 and isinstance(decoded[1], dict)):
            raise wire.WireError("a reply that is not (result, changed arguments)")
        result, changes = decoded
        wire.apply_changes(args, changes)
        return result

    @staticmethod
    def _target(fn, message):
        if fn._handle is not None:
            return dict(message, handle=fn._handle)
        return dict(message, name=fn.__name__)

    def _outgoing(self, value):
        """Tags for what is not plain data: the student's own objects go back as handles, and a
        grader function becomes a callback (it runs here when the student's code calls it)."""
        if isinstance(value, (StudentFunction, StudentObject)) and value._handle is not None:
            return {"ref": value._handle}
        if isinstance(value, StudentFunction):
            return {"name": value.__name__}
        if callable(value):
            number = len(self.callbacks) + 1
            self.callbacks[number] = value
            return {"callback": [number, str(getattr(value, "__name__", "callback"))]}
        raise wire.WireError(f"a {type(value).__name__} cannot be passed to your code "
                             "(plain data only: arrays, numbers, str, tuples, lists, dicts)")

    def _tagged(self, tag, body):
        if tag == "handle" and isinstance(body, list) and len(body) == 3:
            handle, type_name, is_callable = int(body[0]), str(body[1])[:100], bool(body[2])
            if is_callable:
                return StudentFunction(self, type_name, handle)
            return StudentObject(handle, type_name)
        raise wire.WireError(f"unexpected tag {tag!r}")

    def _handle_request(self, message, blobs):
        """The student's code calls back a grader function (a reference, a test's f)."""
        if message.get("op") != "callback":
            return {"error": {"type": "RuntimeError", "message": "the grader answers callbacks only"}}, []
        fn = self.callbacks.get(message.get("callback"))
        if fn is None:
            return {"error": {"type": "RuntimeError", "message": "this function is no longer available"}}, []
        try:
            args, kwargs = wire.decode(message.get("args"), blobs, self._tagged)
            before = wire.snapshot(args)
            result = fn(*args, **kwargs)
            value, out = wire.encode((result, wire.changed(args, before)), self._outgoing)
        except Exception as err:             # noqa: BLE001  (the student's code sees an error, not why)
            return {"error": {"type": type(err).__name__ if type(err).__module__ == "builtins" else "RuntimeError",
                              "message": str(err)[:500]}}, []
        return {"value": value}, out

    @staticmethod
    def _raise(reply):
        error = reply.get("error")
        if error is None:
            return
        if not isinstance(error, dict):
            raise wire.WireError("an error that is not one")
        name, message = str(error.get("type"))[:100], str(error.get("message", ""))[:2000]
        import builtins

        kind = getattr(builtins, name, None) if error.get("builtin") else None
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            kind = type(name if name.isidentifier() else "StudentError", (Exception,), {})
        try:
            err = kind(message)
        except Exception:                    # noqa: BLE001  (UnicodeDecodeError and others want more arguments)
            err = type(name, (Exception,), {})(message)
        err.__nn_raised_in__ = str(error.get("raised_in") or "")[:100] or None
        raise err


def install(namespace):
    grader = Grader(namespace)
    namespace["__nn_proxy__"] = grader
    return grader
