"""A fresh registry per service (and per test), instead of the process-global one."""

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def new_registry(*, runtime: bool = True) -> CollectorRegistry:
    """Returns an empty registry, with process, Python GC and platform metrics if `runtime`.

    The runtime collectors give the CPU and memory series the seed's alerts use;
    tests that compare whole outputs turn them off.
    """
    registry = CollectorRegistry(auto_describe=True)
    if runtime:
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry
