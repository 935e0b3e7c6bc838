"""Switching activity of every cell pin of a gate-level run, read from its waveform (FST or VCD,
with ``pywellen``): transitions per clock period and the fraction of time at 1, over time windows
(docs/synthesis.md, "Power")."""

import pywellen

__all__ = ["pin_activity", "first_high", "end_time"]


def _var_index(waveform):
    return {var.full_name: var for var in waveform.all_vars()}


def first_high(waveform, name):
    """Time of the first 1 of the one-bit variable ``name`` (full name), or None."""
    var = _var_index(waveform).get(name)
    if var is None:
        raise KeyError(f"no variable {name!r} in the waveform")
    signal = var.signal
    for i in range(len(signal)):
        time, value = signal[i]
        if value == 1:
            return time
    return None


def end_time(waveform, clock):
    """Time of the last change of ``clock`` (full name): the end of the run."""
    signal = _var_index(waveform)[clock].signal
    return signal[len(signal) - 1][0]


def _toggles_and_high(signal, t0, t1):
    """Transitions inside ``(t0, t1]`` and time at 1 inside ``[t0, t1)`` of a one-bit signal."""
    toggles, high = 0, 0
    value, since = None, t0
    for i in range(len(signal)):
        time, new = signal[i]
        if time > t1:
            break
        if time <= t0:
            value = new
            continue
        if value == 1:
            high += time - since
        if value is not None and new != value:
            toggles += 1
        value, since = new, time
    if value == 1:
        high += t1 - since
    return toggles, high


def pin_activity(waveform, scope, windows, period):
    """``{window name: {"inst/PIN": (transitions per period, duty)}}`` of every one-bit
    variable directly inside the child scopes of ``scope`` (the cell instances of a netlist).

    Parameters
    ----------
    waveform : pywellen.Waveform or path
    scope : str
        Full name of the netlist instance's scope, e.g. ``TOP.gl_gobo_tile.netlist``.
    windows : dict
        ``{name: (t0, t1)}`` in the waveform's time unit.
    period : int
        The clock period in the same unit.

    Raises
    ------
    ValueError
        If no variable lies under ``scope``, or a window is empty.
    """
    if not isinstance(waveform, pywellen.Waveform):
        waveform = pywellen.Waveform(str(waveform))
    for name, (t0, t1) in windows.items():
        if t1 <= t0:
            raise ValueError(f"window {name!r} is empty: {t0}..{t1}")
    prefix = scope + "."
    by_signal = {}
    pins = []
    for var in waveform.all_vars():
        full = var.full_name
        if not full.startswith(prefix) or var.bitwidth != 1:
            continue
        rest = full[len(prefix):].split(".")
        if len(rest) != 2:             # nets of the netlist itself or signals inside a model
            continue
        pins.append((f"{rest[0]}/{rest[1]}", str(var.signal_id)))
        by_signal.setdefault(str(var.signal_id), var)
    if not pins:
        raise ValueError(f"no cell pins under scope {scope!r} in the waveform")
    result = {}
    for name, (t0, t1) in windows.items():
        cycles = (t1 - t0) / period
        per_signal = {}
        for ref, var in by_signal.items():
            toggles, high = _toggles_and_high(var.signal, t0, t1)
            per_signal[ref] = (toggles / cycles, high / (t1 - t0))
        result[name] = {pin: per_signal[ref] for pin, ref in pins}
    return result
