"""An in-process, synchronous stand-in for the part of Ray that core/distributed.py uses.

Why: the driver's logic (shards, progress per saved shard, checks on a worker, stopping)
can then be tested in seconds with real models and a real DuckDB; the real Ray is
exercised by the slow tests in test_ray.py. Actor methods run when called; `wait` returns
the oldest pending result first, as a steady cluster would; `on_wait` lets a test look at
the world each time the driver waits for a shard."""
from __future__ import annotations

import types


class RayError(Exception):
    pass


exceptions = types.SimpleNamespace(RayError=RayError)


class _Ref:
    def __init__(self, fn, args, kwargs):
        try:
            self.value, self.error = fn(*args, **kwargs), None
        except Exception as e:  # noqa: BLE001 - as Ray: raised by get()
            self.value, self.error = None, e


class _Method:
    def __init__(self, fn):
        self._fn = fn

    def remote(self, *args, **kwargs):
        return _Ref(self._fn, args, kwargs)


class _Actor:
    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        return _Method(getattr(self._obj, name))


class _ActorClass:
    def __init__(self, cls, options):
        self.cls, self.options = cls, options

    def remote(self, *args, **kwargs):
        return _Actor(self.cls(*args, **kwargs))


class FakeRay:
    """`import_ray()`'s answer in tests: `FakeRay(cpus=2)`."""
    exceptions = exceptions

    def __init__(self, cpus: int = 2):
        self.cpus = cpus
        self.initialized = False
        self.actors: list[_ActorClass] = []
        self.on_wait = None
        self.killed = 0

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.initialized = True

    def shutdown(self):
        self.initialized = False

    def cluster_resources(self):
        return {"CPU": float(self.cpus)}

    def remote(self, **options):
        def wrap(cls):
            ac = _ActorClass(cls, options)
            self.actors.append(ac)
            return ac
        return wrap

    def get(self, ref):
        if isinstance(ref, list):
            return [self.get(r) for r in ref]
        if ref.error is not None:
            raise RayError(f"task failed: {ref.error}")
        return ref.value

    def wait(self, refs, num_returns=1):
        if self.on_wait:
            self.on_wait()
        return refs[:num_returns], refs[num_returns:]

    def kill(self, actor):
        self.killed += 1
