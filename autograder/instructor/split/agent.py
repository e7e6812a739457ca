"""The student process's end of the channel: it runs the student's functions for the grader.

Runs in the student's kernel (sandboxed, no reference, no test code), loaded by file path
before any of the student's cells (``execute.py``), and bound to the kernel's namespace as
``__nn_agent__``. Everything here is at the student's mercy, and that is fine: all that leaves
this process is plain data (``wire.py``), checked by the grader, who trusts none of it.

- ``connect(path)``: join the grader process's channel (a Unix socket in the unit's box);
- ``changes()``: which public names of the notebook changed since the last call, and how
  (``{"name": "callable" | "data" | "object" | "deleted"}``), printed as one JSON line;
- ``serve()``: answer the grader's requests until it says ``end``: ``call`` a name (or an
  object the grader holds a handle of) with arguments, ``get`` a name's value. A call returns
  the result, the arguments it changed in place (so that the grader's copies change too),
  or the error with the student's own traceback.
"""
import importlib.util
import inspect
import json
import os
import socket
import sys
import traceback
import types

_spec = importlib.util.spec_from_file_location("_nn_wire", os.path.join(os.path.dirname(__file__), "wire.py"))
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)

MARK = "application/x-nn-split+json"


class Ended(Exception):
    """The grader ended the session while a call was still waiting for a callback."""


class Agent:
    def __init__(self, namespace):
        self.ns, self.seen, self.handles, self.errors, self.overrides = namespace, {}, {}, [], {}
        self.endpoint = None

    # ------------------------------------------------------------------ setup
    def connect(self, path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        self.endpoint = wire.Endpoint(sock, self.handle)
        self.changes(quiet=True)

    def changes(self, quiet=False):
        """Print {name: kind} for the public names bound, rebound or deleted since the last call."""
        now = {k: v for k, v in self.ns.items() if not k.startswith("_")}
        out = {}
        for name, value in now.items():
            if self.seen.get(name, (None,))[0] is not value:
                out[name] = _kind(value)
        for name in self.seen:
            if name not in now:
                out[name] = "deleted"
        self.seen = {k: (v,) for k, v in now.items()}
        if not quiet:
            print(json.dumps(out))

    # ------------------------------------------------------------------ serving
    def serve(self):
        """Answer the grader until it ends the session (one session per grader cell)."""
        self.errors, self.overrides = [], {}
        try:
            self.endpoint.wait(None)
        except (EOFError, OSError, Ended):
            pass
        finally:
            if self.errors:
                from IPython.display import display

                display({MARK: {"errors": self.errors[-20:]}}, raw=True)

    def handle(self, message, blobs):
        op = message.get("op")
        if op == "end":
            raise Ended()
        try:
            if op == "get":
                value = self.ns[str(message.get("name"))]
                return self._value(value, "value")
            if op == "call":
                return self._call(message, blobs)
            if op == "signature":
                return {"signature": _signature(self._target(message))}, []
            return {"error": {"type": "RuntimeError", "message": f"unknown request {op!r}"}}, []
        except Ended:
            raise
        except BaseException as err:           # noqa: BLE001  (an error is an answer too)
            if isinstance(err, KeyboardInterrupt):
                raise
            return {"error": self._error(err)}, []

    def _target(self, message):
        if "handle" in message:
            return self.handles[int(message["handle"])]
        return self.ns[str(message.get("name"))]

    def _call(self, message, blobs):
        fn = self._target(message)
        args, kwargs, new, gone = wire.decode(message.get("payload"), blobs, self._tagged)
        self.overrides.update({str(k): v for k, v in new.items()})
        for name in gone:
            self.overrides.pop(str(name), None)
        overrides = self.overrides
        before = wire.snapshot(args)
        saved = {name: self.ns[name] for name in overrides if name in self.ns}
        self.ns.update(overrides)
        try:
            result = fn(*args, **kwargs)
        except Ended:
            raise
        except BaseException as err:           # noqa: BLE001
            if isinstance(err, KeyboardInterrupt):
                raise
            return {"error": self._error(err)}, []
        finally:
            for name in overrides:
                if name in saved:
                    self.ns[name] = saved[name]
                else:
                    self.ns.pop(name, None)
        return self._value((result, wire.changed(args, before)), "value")

    def _value(self, value, key):
        obj, blobs = wire.encode(value, self._handle)
        return {key: obj}, blobs

    def _handle(self, value):
        """An opaque handle for a value that is not plain data (the grader may call it, nothing more)."""
        self.handles[id(value)] = value
        return {"handle": [id(value), type(value).__name__, callable(value)]}

    def _tagged(self, tag, body):
        if tag == "callback":
            return self._callback(int(body[0]), str(body[1]))
        if tag == "ref":
            return self.handles[int(body)]
        if tag == "name":
            return self.ns[str(body)]
        raise wire.WireError(f"unexpected tag {tag!r}")

    def _callback(self, number, name):
        endpoint = self.endpoint

        def callback(*args, **kwargs):
            obj, blobs = wire.encode((list(args), kwargs), self._handle)
            reply, rblobs = endpoint.request({"op": "callback", "callback": number, "args": obj}, blobs)
            if "error" in reply:
                raise _rebuilt(reply["error"])
            result, changes = wire.decode(reply.get("value"), rblobs, self._tagged)
            wire.apply_changes(args, changes)
            return result

        callback.__name__ = callback.__qualname__ = name
        return callback

    def _error(self, err):
        """What the grader learns of an error: its type, message, and the student's traceback."""
        tb = err.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next                         # the agent's own frames are not the student's
        inner = tb
        while inner is not None and inner.tb_next is not None:
            inner = inner.tb_next
        text = "".join(traceback.format_exception(type(err), err, tb))
        self.errors.append({"type": type(err).__name__, "message": str(err)[:2000], "traceback": text[-6000:]})
        return {"type": type(err).__name__, "message": str(err)[:2000],
                "raised_in": inner.tb_frame.f_code.co_name if inner is not None else None,
                "builtin": type(err).__module__ == "builtins"}


def _kind(value):
    if isinstance(value, types.ModuleType):
        return "module"
    if callable(value):
        return "callable"
    return "data" if wire.can_cross(value) else "object"


def _signature(fn):
    """[[name, kind], ...] of fn's parameters, or None."""
    try:
        return [[p.name, int(p.kind)] for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        return None


def _rebuilt(error):
    import builtins

    kind = getattr(builtins, str(error.get("type")), None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(error.get("message", ""))
    return RuntimeError(f"{error.get('type')}: {error.get('message', '')}")


def install(namespace):
    """The agent of this kernel, bound to its namespace as ``__nn_agent__``."""
    agent = Agent(namespace)
    namespace["__nn_agent__"] = agent
    sys.modules.pop("_nn_wire", None)
    return agent
