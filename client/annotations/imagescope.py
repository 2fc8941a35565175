"""Aperio ImageScope XML: ``<Annotations>`` of ``<Annotation>`` layers of ``<Region>`` outlines.

MoNuSeg's contours are in this format. A vertex ``(X, Y)`` is the centre of pixel ``(X, Y)``
(as MoNuSeg's masks were drawn from it), so it is read as level-0 point ``(X + 0.5, Y + 0.5)``
and written back with the half pixel taken off. A layer's ``Name``, when not empty, is the
classification of its regions; a region's ``Id`` is its instance id when every region of
the file has a distinct one. The root's ``MicronsPerPixel`` gives the resolution. Regions
flagged ``NegativeROA="1"`` (ImageScope's exclusions) are not read; an instance's holes are
not written (the format has no holes in one region).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from pathloop.client.annotations._files import parse_xml
from pathloop.client.annotations._shapes import Outline, build_set, positive_int
from pathloop.client.annotations.instances import InstanceSet
from pathloop.client.errors import InputError

_CENTRE = 0.5


def read_imagescope(path: Path, data: bytes, *, image_size: tuple[int, int] | None,
                    mpp: float | None) -> InstanceSet:
    """The regions of an ImageScope XML document (see the module docstring)."""
    root = parse_xml(path, data, "ImageScope XML")
    if root.tag != "Annotations":
        raise InputError(f"{path}: not ImageScope XML (root <{root.tag}>, expected "
                         "<Annotations>)")
    if mpp is None and root.get("MicronsPerPixel"):
        try:
            mpp = float(root.get("MicronsPerPixel", ""))
        except ValueError:
            raise InputError(f"{path}: MicronsPerPixel {root.get('MicronsPerPixel')!r} is "
                             "not a number") from None
    layer_of = {id(region): layer.get("Name") or None
                for layer in root.iter("Annotation") for region in layer.iter("Region")}
    outlines = []
    for number, region in enumerate(root.iter("Region"), start=1):
        if region.get("NegativeROA") == "1":
            continue
        name = f"region {region.get('Id', number)}"
        points = []
        for vertex in region.iter("Vertex"):
            if "X" not in vertex.attrib or "Y" not in vertex.attrib:
                raise InputError(f"{path}: {name} has a vertex without numeric X and Y")
            points.append((vertex.attrib["X"], vertex.attrib["Y"]))
        outlines.append(Outline(name, points, classification=layer_of.get(id(region)),
                                id=positive_int(region.get("Id"))))
    return build_set(path, outlines, image_size=image_size, mpp=mpp, offset=_CENTRE)


def write_imagescope(annotations: InstanceSet, file: IO[bytes]) -> None:
    """ImageScope XML of the instances: one layer per classification, one region each."""
    root = ET.Element("Annotations")
    if annotations.mpp is not None:
        root.set("MicronsPerPixel", f"{annotations.mpp:.6f}")
    layers: dict[str | None, ET.Element] = {}
    for instance in annotations.instances:
        if instance.classification not in layers:
            layer = ET.SubElement(root, "Annotation", Id=str(len(layers) + 1),
                                  Name=instance.classification or "", Type="4",
                                  LineColor="65280", Visible="1")
            ET.SubElement(layer, "Attributes")
            ET.SubElement(layer, "Regions")
            layers[instance.classification] = layer
        regions = layers[instance.classification].find("Regions")
        assert regions is not None
        region = ET.SubElement(regions, "Region", Id=str(instance.id), Type="0",
                               NegativeROA="0", Text="")
        vertices = ET.SubElement(region, "Vertices")
        for x, y in list(instance.polygon.exterior.coords)[:-1]:
            ET.SubElement(vertices, "Vertex", X=_number(x - _CENTRE), Y=_number(y - _CENTRE))
    ET.ElementTree(root).write(file, encoding="utf-8", xml_declaration=True)


def _number(value: float) -> str:
    return repr(float(value)).removesuffix(".0")
