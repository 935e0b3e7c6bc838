"""Switching activity of every net of a gate-level run, read from its waveform (FST or VCD, with
``pywellen``): transitions per clock period and the fraction of time at 1, over time windows
(docs/synthesis.md, "Power")."""

import pywellen

__all__ = ["net_activity", "first_high", "end_time"]


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


def _one_bit_activity(signal, t0, t1):
    """:func:`_bit_activity` of a one-bit signal (most nets), without the bit loop."""
    toggles = high = 0
    value, since = None, t0
    for i in range(len(signal)):
        time, new = signal[i]
        if time > t1:
            break
        if time <= t0:
            value = new
            continue
        if value is not None and new != value:
            toggles += 1
            if value == 1:
                high += time - since
            since = time
        value = new
    if value == 1:
        high += t1 - since
    return [toggles], [high]


def _bit_activity(signal, width, t0, t1):
    """Per bit of a signal: transitions inside ``(t0, t1]`` and time at 1 inside ``[t0, t1)``."""
    if width == 1 and signal[0][1] in (0, 1):
        return _one_bit_activity(signal, t0, t1)
    toggles, high = [0] * width, [0] * width
    value, since = None, t0

    def add_high(v, span):
        for bit in range(width):
            if v >> bit & 1:
                high[bit] += span

    for i in range(len(signal)):
        time, new = signal[i]
        new = int(new) if isinstance(new, int) else int(str(new).replace("x", "0")
                                                         .replace("z", "0"), 2)
        if time > t1:
            break
        if time <= t0:
            value = new
            continue
        if value is not None:
            add_high(value, time - since)
            changed = value ^ new
            while changed:
                low = changed & -changed
                toggles[low.bit_length() - 1] += 1
                changed ^= low
        value, since = new, time
    if value is not None:
        add_high(value, t1 - since)
    return toggles, high


def net_activity(waveform, scope, windows, period, names=None):
    """``{window name: {net: (transitions per period, duty)}}`` of every variable under
    ``scope`` (the netlist instance), one entry per bit (``name[i]`` for a vector).

    Parameters
    ----------
    waveform : pywellen.Waveform or path
    scope : str
        Full name of the netlist instance's scope, e.g. ``gl_gobo_tile.netlist``.
    windows : dict
        ``{name: (t0, t1)}`` in the waveform's time unit.
    period : int
        The clock period in the same unit.
    names : dict, optional
        ``{name in the waveform: net name}`` (:func:`sim.gate_level.simulation_netlist`'s);
        other names are kept.

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
    names = names or {}
    prefix = scope + "."
    by_signal, nets = {}, []
    for var in waveform.all_vars():
        if not var.full_name.startswith(prefix):
            continue
        local = var.full_name[len(prefix):]
        # Variables that alias one net share one signal: measured once.
        ref = str(var.signal_id)
        by_signal.setdefault(ref, var)
        nets.append((names.get(local, local), var.bitwidth, ref))
    if not nets:
        raise ValueError(f"no variables under scope {scope!r} in the waveform")
    result = {}
    for window, (t0, t1) in windows.items():
        cycles, span = (t1 - t0) / period, t1 - t0
        measured = {ref: _bit_activity(var.signal, var.bitwidth, t0, t1)
                    for ref, var in by_signal.items()}
        found = {}
        for net, width, ref in nets:
            toggles, high = measured[ref]
            if width == 1:
                found[net] = (toggles[0] / cycles, high[0] / span)
            else:
                for bit in range(width):
                    found[f"{net}[{bit}]"] = (toggles[bit] / cycles, high[bit] / span)
        result[window] = found
    return result
