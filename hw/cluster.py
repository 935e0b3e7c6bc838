"""Independent jobs on a Dask cluster: the synthesis sweep (``gobo synth --sweep``) and the RTL
regression over every MiniLM matrix (``scripts/simulate_all.py``, ``make test-full``).

By default a ``distributed.LocalCluster`` of one single-threaded worker process per core runs the
jobs on this machine; ``scheduler`` names a running scheduler instead (``tcp://host:8786``), e.g.
one started by ``dask-jobqueue``'s ``SLURMCluster`` or ``LSFCluster`` (docs/verification.md).
Every worker must import this checkout's packages from the same path (a shared file system) so
that the caches under ``build/`` (or ``$GOBO_CACHE``) are shared too.

Here rather than in ``sim/`` or ``synth/``: both use it, and neither may import the other.
"""

import os
import sys

__all__ = ["run_jobs", "ClusterError", "CONNECT_TIMEOUT"]

#: How long to try reaching a ``scheduler`` before giving up.
CONNECT_TIMEOUT = "20s"


class ClusterError(RuntimeError):
    """The scheduler could not be reached, or a job raised (its name and error in the message)."""


def _client(scheduler, workers):
    from distributed import Client, LocalCluster
    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    # One thread per worker: a job is a Python process driving Yosys, nextpnr or Verilator.
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=":0")
    return Client(cluster)


def run_jobs(function, jobs, *, scheduler=None, workers=None, on_result=None):
    """Run ``function(*args)`` for every ``name: args`` of ``jobs`` on the cluster, in the given
    order of submission; call ``on_result(name, result)`` here as each one ends (progress,
    stored results for a resumed run).

    Parameters
    ----------
    function : callable
        Importable by the workers (a module-level function).
    jobs : dict
        ``{name: tuple of arguments}``; names are unique strings.
    scheduler : str, optional
        Address of a running scheduler; default: a LocalCluster on this machine.
    workers : int, optional
        LocalCluster workers (default: every core).

    Returns
    -------
    dict
        ``{name: result}`` in the order of ``jobs``.

    Raises
    ------
    ClusterError
        If the scheduler cannot be reached, or a job raised (after the others ended).
    """
    if not jobs:
        return {}
    if len(jobs) == 1 and not scheduler:       # no cluster for one job
        (name, args), = jobs.items()
        result = function(*args)
        if on_result:
            on_result(name, result)
        return {name: result}
    from distributed import as_completed
    results, failures = {}, []
    client = _client(scheduler, workers)
    try:
        futures = {client.submit(function, *args, key=f"{name}-{os.getpid()}", pure=False): name
                   for name, args in jobs.items()}
        for future in as_completed(futures):
            name = futures[future]
            try:
                results[name] = future.result()
            except Exception as e:  # a job's own error: report it with its name, go on
                failures.append(f"{name}: {type(e).__name__}: {e}")
                print(f"cluster: job {name} failed: {e}", file=sys.stderr, flush=True)
                continue
            finally:
                future.release()     # the result is here: the workers may forget it
            if on_result:
                on_result(name, results[name])
    finally:
        # The client first (it holds the futures), then a LocalCluster of our own.
        cluster = None if scheduler else client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
    if failures:
        raise ClusterError(f"{len(failures)} of {len(jobs)} jobs failed: " + "; ".join(failures))
    return {name: results[name] for name in jobs}
