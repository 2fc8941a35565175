"""ASAP XML (CAMELYON, wholeslidedata): ``<ASAP_Annotations>`` with groups.

Each ``<Annotation>`` of type ``Polygon``, ``Spline`` or ``Rectangle`` is an instance (its
``<Coordinate>`` points in ``Order``, level-0 px; a spline is read as the polygon through its
points); ``Dot`` and ``PointSet`` annotations have no area and are skipped with a warning. The
``PartOfGroup`` (``"None"`` for none) is the classification; an annotation's ``Name`` is its
instance id when every annotation of the file has a distinct positive integer name. ASAP has
no holes: an instance's holes are not written.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from pathloop.client.annotations._files import parse_xml
from pathloop.client.annotations._shapes import Outline, build_set, positive_int
from pathloop.client.annotations.instances import InstanceSet
from pathloop.client.errors import InputError

log = logging.getLogger(__name__)

_AREAS = ("Polygon", "Spline", "Rectangle")
_DEFAULT_COLOR = "#F4FA58"


def read_asap(path: Path, data: bytes, *, image_size: tuple[int, int] | None,
              mpp: float | None) -> InstanceSet:
    """The area annotations of an ASAP XML document (see the module docstring)."""
    root = parse_xml(path, data, "ASAP XML")
    if root.tag != "ASAP_Annotations":
        raise InputError(f"{path}: not ASAP XML (root <{root.tag}>, expected "
                         "<ASAP_Annotations>)")
    outlines, skipped = [], 0
    for number, annotation in enumerate(root.iter("Annotation"), start=1):
        name = f"annotation {annotation.get('Name') or number}"
        if annotation.get("Type", "Polygon") not in _AREAS:
            skipped += 1
            continue
        points: list[tuple[int, tuple[str, str]]] = []
        for coordinate in annotation.iter("Coordinate"):
            try:
                order = int(coordinate.get("Order", len(points)))
            except ValueError:
                raise InputError(f"{path}: {name} has a non-numeric coordinate Order"
                                 ) from None
            if "X" not in coordinate.attrib or "Y" not in coordinate.attrib:
                raise InputError(f"{path}: {name} has a vertex without numeric X and Y")
            points.append((order, (coordinate.attrib["X"], coordinate.attrib["Y"])))
        points.sort(key=lambda item: item[0])
        group = annotation.get("PartOfGroup")
        outlines.append(Outline(name, [p for _, p in points],
                                classification=None if group in (None, "", "None") else group,
                                id=positive_int(annotation.get("Name"))))
    if skipped:
        log.warning("%s: skipped %d annotation(s) without area (dots, point sets)", path,
                    skipped)
    return build_set(path, outlines, image_size=image_size, mpp=mpp)


def write_asap(annotations: InstanceSet, file: IO[bytes]) -> None:
    """ASAP XML of the instances: polygons named by id, one group per classification."""
    root = ET.Element("ASAP_Annotations")
    listed = ET.SubElement(root, "Annotations")
    for instance in annotations.instances:
        annotation = ET.SubElement(listed, "Annotation", Name=str(instance.id), Type="Polygon",
                                   PartOfGroup=instance.classification or "None",
                                   Color=_DEFAULT_COLOR)
        coordinates = ET.SubElement(annotation, "Coordinates")
        for order, (x, y) in enumerate(list(instance.polygon.exterior.coords)[:-1]):
            ET.SubElement(coordinates, "Coordinate", Order=str(order), X=repr(float(x)),
                          Y=repr(float(y)))
    groups = ET.SubElement(root, "AnnotationGroups")
    for name in dict.fromkeys(i.classification for i in annotations.instances if
                              i.classification):
        group = ET.SubElement(groups, "Group", Name=str(name), PartOfGroup="None",
                              Color=_DEFAULT_COLOR)
        ET.SubElement(group, "Attributes")
    ET.ElementTree(root).write(file, encoding="utf-8", xml_declaration=True)
