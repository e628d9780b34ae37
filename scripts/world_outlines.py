"""Make the console's map outlines from Natural Earth (public domain) at development time.

The console draws its map from a file the package carries: nothing is fetched at run time.
This script turns the TopoJSON of the npm package `world-atlas` (Natural Earth 4.1.0,
packaged by Mike Bostock under the ISC licence) into one SVG path per country in an
equirectangular plane (x = longitude, y = -latitude), rounded to `--digits` decimals::

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python scripts/world_outlines.py package/countries-50m.json \
        src/bices/console/static/data/world.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

Point = tuple[float, float]


def decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    """Absolute coordinates of each arc (TopoJSON stores quantised deltas)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs: list[list[Point]] = []
    for arc in topology["arcs"]:
        x = y = 0
        points: list[Point] = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[Point]], indexes: list[int]) -> list[Point]:
    """One closed ring from its arcs; a negative index is the reversed arc ~i."""
    points: list[Point] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else list(reversed(arcs[~index]))
        points.extend(arc[1:] if points else arc)
    return points


def path(rings: list[list[Point]], digits: int) -> str:
    """SVG path data; consecutive points that round to the same place are dropped."""
    parts: list[str] = []
    for points in rings:
        kept: list[tuple[float, float]] = []
        for lon, lat in points:
            p = (round(lon, digits), round(-lat, digits))
            if not kept or kept[-1] != p:
                kept.append(p)
        if len(kept) < 4:
            continue
        text = " ".join(f"{x:g},{y:g}" for x, y in kept[:-1])
        parts.append(f"M{text}Z")
    return "".join(parts)


def outlines(topology: dict[str, Any], digits: int) -> list[dict[str, str]]:
    arcs = decode_arcs(topology)
    countries: list[dict[str, str]] = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        if geometry["type"] == "Polygon":
            polygons = [geometry["arcs"]]
        elif geometry["type"] == "MultiPolygon":
            polygons = geometry["arcs"]
        else:
            continue
        rings = [ring(arcs, r) for polygon in polygons for r in polygon]
        d = path(rings, digits)
        if d:
            countries.append({"name": geometry["properties"]["name"], "d": d})
    return sorted(countries, key=lambda c: c["name"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("topojson", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--digits", type=int, default=1)
    args = parser.parse_args()
    topology = json.loads(args.topojson.read_text("utf-8"))
    data = {
        "source": "Natural Earth 4.1.0 (public domain), via world-atlas 2.0.2",
        "projection": "equirectangular: x = longitude, y = -latitude (degrees)",
        "countries": outlines(topology, args.digits),
    }
    args.output.write_text(json.dumps(data, separators=(",", ":")) + "\n", "utf-8")
    print(f"{len(data['countries'])} countries -> {args.output}")


if __name__ == "__main__":
    main()
