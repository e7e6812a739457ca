"""What may cross between the student process and the grader process: plain data, nothing else.

Loaded by file path in both kernels (``agent.py``, ``proxy.py``), so it imports nothing of
the course: only the standard library and numpy.

A message is one frame on a Unix socket pair: an 8-byte header (the JSON part's length and
the number of binary parts), the JSON part, then each binary part with its 8-byte length.
``encode`` turns a value into JSON and binary parts; ``decode`` turns them back into *new*
objects. Encodable values, the only ones:

- None, bool, int, float, str;
- numpy arrays of a numeric or boolean dtype (the bytes, dtype and shape; never ``object``),
  numpy scalars of those dtypes;
- tuples, lists, dicts (keys encodable too) of encodable values;
- numpy ``Generator`` s, by the state of their bit generator (PCG64 and friends);
- numpy dtypes and scalar types (``np.float32``, ``np.dtype("int64")``) of those kinds.

Anything else is handed to the caller's ``other(value)``, which returns a tag of its own
making (a callable becomes a callback, a student's object an opaque handle) or raises
``WireError``. Nothing is ever unpickled or evaluated: a frame that is not exactly this
(too deep, too large, a dtype that is not numeric, bytes that do not fit the shape) raises
``WireError``.
"""
import json
import socket
import struct

import numpy as np

MAX_FRAME = 1 << 30          # 1 GiB in one message: an array the size of all of MNIST fits 20 times
MAX_DEPTH = 64
NUMERIC = "biufc"
HEADER = struct.Struct(">QQ")
PART = struct.Struct(">Q")
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class WireError(Exception):
    """A value that may not cross, or a frame that is not one of ours."""


# ------------------------------------------------------------------------------ values
def encode(value, other=None):
    """(JSON-ready object, [bytes]) for ``value``; ``other(value)`` tags what is not plain data."""
    blobs = []
    return _enc(value, blobs, other, 0), blobs


def _enc(x, blobs, other, depth):
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return {"int": str(int(x))} if abs(x) > 2 ** 53 else int(x)
    if isinstance(x, float):
        return {"float": repr(float(x))}
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        arr = np.asarray(x)
        if arr.dtype.kind not in NUMERIC or arr.dtype.fields is not None:
            raise WireError(f"an array of dtype {arr.dtype} cannot be passed (numeric dtypes only)")
        blobs.append(memoryview(np.ascontiguousarray(arr).reshape(-1).view(np.uint8)))    # no copy
        tag = "nd" if isinstance(x, np.ndarray) else "np"
        return {tag: [arr.dtype.str, list(arr.shape), len(blobs) - 1]}
    if isinstance(x, tuple):
        return {"tuple": [_enc(v, blobs, other, depth + 1) for v in x]}
    if isinstance(x, list):
        return [_enc(v, blobs, other, depth + 1) for v in x]
    if isinstance(x, dict):
        return {"dict": [[_enc(k, blobs, other, depth + 1), _enc(v, blobs, other, depth + 1)]
                         for k, v in x.items()]}
    if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
        dtype = np.dtype(x)
        if dtype.kind not in NUMERIC or dtype.fields is not None:
            raise WireError(f"dtype {dtype} cannot be passed (numeric dtypes only)")
        return {"dtype": [dtype.str, isinstance(x, type)]}
    if isinstance(x, np.random.Generator):
        state = x.bit_generator.state
        if state.get("bit_generator") not in BIT_GENERATORS:
            raise WireError(f"a Generator with {state.get('bit_generator')} cannot be passed")
        return {"rng": _enc(state, blobs, None, depth + 1)}
    if other is None:
        raise WireError(f"a value of type {type(x).__name__} cannot be passed")
    return other(x)


def decode(obj, blobs, tagged=None):
    """The value ``obj`` (from ``encode``) stands for, as new objects; ``tagged(obj)`` for other tags."""
    return _dec(obj, blobs, tagged, 0)


def _dec(x, blobs, tagged, depth):
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, list):
        return [_dec(v, blobs, tagged, depth + 1) for v in x]
    if not isinstance(x, dict) or len(x) != 1:
        raise WireError("not a value of the wire format")
    (tag, body), = x.items()
    if tag == "int":
        return int(_str(body)[:400])
    if tag == "float":
        return float(_str(body))
    if tag in ("nd", "np"):
        return _array(body, blobs, scalar=tag == "np")
    if tag == "tuple":
        return tuple(_dec(v, blobs, tagged, depth + 1) for v in _list(body))
    if tag == "dict":
        out = {}
        for pair in _list(body):
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("a dict entry is not a pair")
            key = _dec(pair[0], blobs, tagged, depth + 1)
            try:
                out[key] = _dec(pair[1], blobs, tagged, depth + 1)
            except TypeError:
                raise WireError("a dict key is not hashable") from None
        return out
    if tag == "dtype":
        if not (isinstance(body, list) and len(body) == 2):
            raise WireError("not a dtype")
        try:
            dtype = np.dtype(_str(body[0]))
        except TypeError:
            raise WireError("not a dtype") from None
        if dtype.kind not in NUMERIC or dtype.fields is not None or dtype.subdtype is not None:
            raise WireError(f"dtype {dtype} is not numeric")
        return dtype.type if body[1] else dtype
    if tag == "rng":
        state = _dec(body, blobs, None, depth + 1)
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in BIT_GENERATORS:
            raise WireError("not a numpy Generator state")
        bitgen = getattr(np.random, name)()
        try:
            bitgen.state = state
        except (TypeError, ValueError, KeyError) as err:
            raise WireError(f"not a valid {name} state: {err}") from None
        return np.random.Generator(bitgen)
    if tagged is None:
        raise WireError(f"unexpected tag {tag!r}")
    return tagged(tag, body)


def _str(x):
    if not isinstance(x, str):
        raise WireError("expected a string")
    return x


def _list(x):
    if not isinstance(x, list):
        raise WireError("expected a list")
    return x


def _array(body, blobs, scalar):
    if not (isinstance(body, list) and len(body) == 3 and isinstance(body[1], list)
            and isinstance(body[2], int) and 0 <= body[2] < len(blobs)):
        raise WireError("not an array")
    try:
        dtype = np.dtype(_str(body[0]))
    except TypeError:
        raise WireError("not a dtype") from None
    shape = body[1]
    if dtype.kind not in NUMERIC or dtype.fields is not None or dtype.subdtype is not None:
        raise WireError(f"dtype {dtype} is not numeric")
    if len(shape) > 32 or not all(isinstance(n, int) and 0 <= n for n in shape):
        raise WireError("not an array shape")
    data = blobs[body[2]]
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(data):
        raise WireError("the bytes do not fit the array's shape")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    if not arr.flags.writeable or isinstance(data, bytes):
        arr = arr.copy()
    if scalar:
        if arr.shape != ():
            raise WireError("a scalar with a shape")
        return arr[()]
    return arr


MUTABLE = (np.ndarray, list, dict, np.random.Generator)


def snapshot(args):
    """What ``changed`` compares with: a copy of each mutable argument that can cross (else None)."""
    return [_copy(a) if isinstance(a, MUTABLE) and _encoded_or_none(a, shallow=True) is not None else None
            for a in args]


def changed(args, before):
    """{index: argument} of the mutable arguments whose contents differ from ``before``."""
    return {i: arg for i, (arg, old) in enumerate(zip(args, before)) if old is not None and not _same(arg, old)}


def _copy(x):
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_copy(v) for v in x)
    if isinstance(x, np.random.Generator):
        return ("rng", repr(x.bit_generator.state))
    return x


def _same(x, old):
    if isinstance(x, np.ndarray):
        return (isinstance(old, np.ndarray) and x.shape == old.shape and x.dtype == old.dtype
                and np.array_equal(x, old, equal_nan=x.dtype.kind in "fc"))
    if isinstance(x, dict):
        return isinstance(old, dict) and x.keys() == old.keys() and all(_same(x[k], old[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return type(x) is type(old) and len(x) == len(old) and all(_same(a, b) for a, b in zip(x, old))
    if isinstance(x, np.random.Generator):
        return old == ("rng", repr(x.bit_generator.state))
    try:
        return type(x) is type(old) and bool(x == old)
    except Exception:                        # noqa: BLE001  (a value without a plain ==: assume it changed)
        return False


def can_cross(value):
    """True when ``value`` is plain data (without copying its bytes)."""
    return _encoded_or_none(value, shallow=True) is not None


def _encoded_or_none(value, shallow=False):
    """encode(value), or None when it cannot cross; ``shallow``: only whether it can (no bytes copied)."""
    try:
        if shallow:
            return _can_cross(value, 0) or None
        return encode(value)
    except (WireError, RecursionError):
        return None


def _can_cross(x, depth):
    if depth > MAX_DEPTH:
        raise WireError("too deep")
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in NUMERIC or x.dtype.fields is not None:
            raise WireError("not numeric")
        return True
    if isinstance(x, dict):
        return all(_can_cross(k, depth + 1) and _can_cross(v, depth + 1) for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return all(_can_cross(v, depth + 1) for v in x)
    encode(x)
    return True


def update_in_place(mine, new):
    """Change ``mine`` in place to what the other process's function made of its copy (``new``)."""
    if isinstance(mine, np.ndarray):
        if isinstance(new, np.ndarray) and new.shape == mine.shape and mine.flags.writeable:
            mine[...] = new
    elif isinstance(mine, dict) and isinstance(new, dict):
        for key in [k for k in mine if k not in new]:
            del mine[key]
        for key, value in new.items():
            if key in mine and isinstance(mine[key], MUTABLE) and type(mine[key]) is type(value):
                update_in_place(mine[key], value)
            else:
                mine[key] = value
    elif isinstance(mine, list) and isinstance(new, list):
        if len(mine) == len(new):
            for i, value in enumerate(new):
                if isinstance(mine[i], MUTABLE) and type(mine[i]) is type(value):
                    update_in_place(mine[i], value)
                else:
                    mine[i] = value
        else:
            mine[:] = new
    elif isinstance(mine, np.random.Generator) and isinstance(new, np.random.Generator):
        mine.bit_generator.state = new.bit_generator.state


def apply_changes(args, changes):
    """Apply ``changed``'s result (decoded) to the caller's own arguments."""
    if not isinstance(changes, dict):
        raise WireError("changed arguments that are not a dict")
    for i, new in changes.items():
        if isinstance(i, int) and 0 <= i < len(args):
            update_in_place(args[i], new)


# ------------------------------------------------------------------------------ frames
def send(sock, message, blobs=()):
    """Send one frame: ``message`` (JSON-ready) and its binary parts."""
    head = json.dumps(message, allow_nan=False).encode("utf-8")
    if len(head) + sum(len(b) for b in blobs) > MAX_FRAME:
        raise WireError(f"a message larger than {MAX_FRAME >> 20} MB")
    small = [HEADER.pack(len(head), len(blobs)), head]
    for blob in blobs:                        # large parts go out as they are, without a joined copy
        small.append(PART.pack(len(blob)))
        if len(blob) < 1 << 16:
            small.append(blob)
        else:
            sock.sendall(b"".join(small))
            sock.sendall(blob)
            small = []
    if small:
        sock.sendall(b"".join(small))


def receive(sock):
    """(message, [bytes]) of the next frame; EOFError when the other side has gone."""
    size, count = HEADER.unpack(bytes(_exactly(sock, HEADER.size)))
    if size > MAX_FRAME or count > 1 << 20:
        raise WireError("a frame larger than allowed")
    try:
        message = json.loads(bytes(_exactly(sock, size)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireError("a frame that is not JSON") from None
    blobs, total = [], size
    for _ in range(count):
        (length,) = PART.unpack(bytes(_exactly(sock, PART.size)))
        total += length
        if total > MAX_FRAME:
            raise WireError("a frame larger than allowed")
        blobs.append(_exactly(sock, length))
    if not isinstance(message, dict):
        raise WireError("a frame that is not a message")
    return message, blobs


def _exactly(sock, n):
    """n bytes from sock, as a bytearray (an array decoded from it needs no copy)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        count = sock.recv_into(view[got:], min(n - got, 1 << 22))
        if not count:
            raise EOFError("the other process closed the channel")
        got += count
    return buf


class Endpoint:
    """One side of the channel: requests that wait for their reply, answering the other side's
    requests meanwhile (a call from the grader may call back into the grader, and so on).

    ``handler(message, blobs)`` answers a request: it returns (reply, blobs) to send back.
    """

    def __init__(self, sock, handler):
        self.sock, self.handler, self.next_id = sock, handler, 0

    def request(self, message, blobs=()):
        self.next_id += 1
        mine = self.next_id
        send(self.sock, dict(message, id=mine), blobs)
        return self.wait(mine)

    def wait(self, reply_to=None):
        """Serve requests until the reply to ``reply_to`` comes (or an ``end`` if it is None)."""
        while True:
            message, blobs = receive(self.sock)
            op = message.get("op")
            if op == "reply":
                if message.get("to") == reply_to:
                    return message, blobs
                continue                         # a late reply to an interrupted request
            if op == "end" and reply_to is None:
                return message, blobs
            reply, out = self.handler(message, blobs)
            send(self.sock, dict(reply, op="reply", to=message.get("id")), out)


def pair():
    """A connected pair of Unix stream sockets (for tests)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
