"""Amaranth data layouts built from the packed formats of :mod:`golden.hwmodel.packing`.

``golden.hwmodel.packing`` defines each packed format once, as an ordered list of
:class:`~golden.hwmodel.packing.Field` (least significant first). This module turns such a list
into an :class:`amaranth.lib.data.StructLayout` with the same bit placement, so the hardware, the
golden model and the testbenches read the same bits the same way:

- a scalar field becomes ``signed(width)`` or ``unsigned(width)`` (a record field: the
  ``StructLayout`` of its record);
- an array field (``array=True``) becomes an ``ArrayLayout`` of its elements, also of one
  element, element 0 at the lowest bits; a multi-dimensional one nests them, outermost
  dimension outside, exactly as :func:`golden.hwmodel.packing.pack` places the elements.

A word that is one array (a dictionary, the bins, a tile's output beat) is a port of the
array's own layout (:func:`field_layout`), so the hardware indexes it directly
(``o.payload[p]``); its bits are still those of ``pack(fields, {name: values})``.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from golden.hwmodel.packing import (
    act_word_fields,
    bins_fields,
    centroids_fields,
    correction_fields,
    dots_fields,
    mac_input_fields,
    outlier_word_fields,
    pe_input_fields,
    tile_output_fields,
)

__all__ = ["field_shape", "struct_layout", "field_layout", "pe_input_layout", "mac_input_layout",
           "centroids_layout", "bins_layout", "act_word_layout", "outlier_word_layout",
           "dots_layout", "corrections_layout", "tile_output_layout"]


def field_shape(field):
    """The Amaranth shape of one :class:`~golden.hwmodel.packing.Field`: an element shape, or
    nested ``ArrayLayout`` s of it for an array field (whatever its element count)."""
    if field.record is not None:
        shape = struct_layout(field.record)
    else:
        shape = signed(field.width) if field.signed else unsigned(field.width)
    if field.array:
        for count in reversed(field.shape):     # innermost dimension first
            shape = data.ArrayLayout(shape, count)
    return shape


def struct_layout(fields):
    """A :class:`~amaranth.lib.data.StructLayout` whose fields follow ``fields`` in order from
    bit 0, so that its bits equal :func:`golden.hwmodel.packing.pack` of the same list.

    Raises
    ------
    ValueError
        If two fields share a name.
    """
    members = {}
    for field in fields:
        if field.name in members:
            raise ValueError(f"field name {field.name!r} appears twice")
        members[field.name] = field_shape(field)
    return data.StructLayout(members)


def field_layout(fields):
    """The shape of a word made of exactly one field: the field's own (:func:`field_shape`), the
    same bits as ``struct_layout(fields)``.

    Raises
    ------
    ValueError
        If ``fields`` does not hold exactly one field.
    """
    if len(fields) != 1:
        raise ValueError(f"a word of one field was expected, not of "
                         f"{', '.join(repr(f.name) for f in fields) or 'none'}")
    return field_shape(fields[0])


def pe_input_layout(config):
    """Payload of one PE input beat: ``indexes``, ``acts`` and ``last``
    (see :func:`golden.hwmodel.packing.pe_input_fields`)."""
    return struct_layout(pe_input_fields(config))


def mac_input_layout(config, weight_bits):
    """Payload of one MAC baseline PE input beat: ``weights``, ``acts`` and ``last``
    (see :func:`golden.hwmodel.packing.mac_input_fields`)."""
    return struct_layout(mac_input_fields(config, weight_bits))


def centroids_layout(config, bits=None):
    """A dictionary of ``config.n_centroids`` signed centroids of ``bits`` bits each (default
    ``config.centroid_bits``), element ``k`` at bits ``k*bits`` up
    (:func:`golden.hwmodel.packing.centroids_fields`)."""
    return field_layout(centroids_fields(config, bits))


def bins_layout(config):
    """The completed bins of one dot product: ``n_centroids`` signed ``bin_bits`` integers
    (:func:`golden.hwmodel.packing.bins_fields`)."""
    return field_layout(bins_fields(config))


def act_word_layout(config):
    """A word of the activation memory: ``lanes`` signed activations
    (:func:`golden.hwmodel.packing.act_word_fields`)."""
    return field_layout(act_word_fields(config))


def outlier_word_layout(config):
    """A word of the outlier memory: ``outlier_lanes`` records
    (:func:`golden.hwmodel.packing.outlier_word_fields`)."""
    return field_layout(outlier_word_fields(config))


def dots_layout(config, dot_bits=None):
    """The ``pes`` dot products of one slot (:func:`golden.hwmodel.packing.dots_fields`)."""
    return field_layout(dots_fields(config, dot_bits))


def corrections_layout(config):
    """The ``pes`` outlier corrections of one slot
    (:func:`golden.hwmodel.packing.correction_fields`)."""
    return field_layout(correction_fields(config))


def tile_output_layout(config):
    """One output beat of a tile: ``pes`` signed ``act_bits`` outputs
    (:func:`golden.hwmodel.packing.tile_output_fields`)."""
    return field_layout(tile_output_fields(config))
