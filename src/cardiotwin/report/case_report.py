"""The per-case report: one self-contained HTML page of a case folder.

Sections: the image with its labels (three orthogonal slices), the heart in its torso, the fibres,
the calibrated activation map, the measured against the fitted 12-lead ECG with per-lead
correlations, the calibrated parameters, QC warnings (segmentation, walls, meshes, calibration
notes) and the provenance of every stage. Pictures are PNGs embedded as ``data:`` URIs, so the one
file can be mailed or archived; a picture that cannot be drawn (no image, a stage not run, PyVista
absent) is replaced by a line saying why. A small script marks ``<body data-images-loaded="k/n">``
once the page has loaded, so a headless browser can check that every picture decodes.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cardiotwin import fields as F
from cardiotwin.io.atomic import read_json

PICTURES = {"slices": "Image and labels", "meshes": "Heart in the torso", "fibres": "Fibres",
            "activation": "Calibrated activation times", "ecg": "Measured and fitted 12-lead ECG"}
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{margin-bottom:0}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;
border:1px solid #ddd}.warn{color:#a40}.missing{color:#888;font-style:italic}"""
_CHECK = ("<script>addEventListener('load',()=>{const i=[...document.images];document.body.dataset.imagesLoaded="
          "i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length;});</script>")


@dataclass
class CaseFiles:
    """Where the report's sources lie: the case folder, and the image and labels it started from."""

    case: Path
    image: Path | None = None
    labels: Path | None = None

    def json(self, rel: str) -> dict | None:
        return read_json(self.case / rel)


def viz_missing() -> str | None:
    """Why the 3-D pictures cannot be drawn (PyVista absent), or None."""
    if importlib.util.find_spec("pyvista") is None:
        return "PyVista is not installed (pip install 'cardiotwin[viz]')"
    return None


def draw_pictures(files: CaseFiles, out: Path) -> dict[str, Path | str]:
    """Each picture's PNG in ``out`` (``report_<name>.png``), or the reason it was not drawn."""
    from cardiotwin.io import read_image, read_labels, read_mesh

    case, cal = files.case, files.case / F.CALIBRATION_DIR
    viz = viz_missing()
    heart = case / F.HEART
    drawers: dict[str, Callable[[Path], Path] | str] = {}
    walls = case / F.LABELS_WALLS
    if files.image is None:
        drawers["slices"] = "no image: the case started from a label map"
    elif not walls.is_file():
        drawers["slices"] = "no labels (the anatomy stage has not run)"
    else:
        from cardiotwin.report.slices import plot_segmentation

        def slices(path: Path) -> Path:
            image, labels = read_image(files.image), read_labels(walls, convention="cardiotwin")
            if labels.shape != image.shape:
                return "the image and the label map are on different grids"
            return plot_segmentation(image, labels, path)
        drawers["slices"] = slices
    if viz:
        for name in ("meshes", "fibres", "activation"):
            drawers[name] = viz
    else:
        from cardiotwin.report.fibres_figure import plot_fibres
        from cardiotwin.report.mesh_figure import plot_field, plot_meshes

        torso = case / F.TORSO
        drawers["meshes"] = (lambda p: plot_meshes(read_mesh(heart), read_mesh(torso) if torso.is_file() else None, p)) \
            if heart.is_file() else "no twin heart (the fibres stage has not run)"
        drawers["fibres"] = (lambda p: plot_fibres(read_mesh(heart), p)) if heart.is_file() else drawers["meshes"]
        beat = cal / F.HEART_EP
        def activation(path: Path) -> Path:
            mesh = read_mesh(beat)
            return plot_field(mesh, mesh.point_data[F.ACTIVATION], path, "activation (ms)")
        drawers["activation"] = activation if beat.is_file() else \
            "no calibrated beat (the case has no ECG, or calibration has not run)"
    overlay = cal / F.OVERLAY
    pictures: dict[str, Path | str] = {}
    for name, how in drawers.items():
        pictures[name] = how if isinstance(how, str) else how(out / f"report_{name}.png")
    pictures["ecg"] = overlay if overlay.is_file() else "no calibration"
    return pictures


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
    return "" if v is None else str(v)


def _picture(title: str, picture: Path | str) -> str:
    if isinstance(picture, str):
        return f"<h3>{html.escape(title)}</h3><p class='missing'>not drawn: {html.escape(picture)}</p>"
    data = base64.b64encode(Path(picture).read_bytes()).decode()
    return f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"


def volumes_table(mesh_report: dict | None, segmentation: dict | None) -> list[list]:
    """Rows (structure, ml in the labels, ml in the mesh) of the chambers, walls and vessels."""
    rows: dict[str, list] = {}
    for part in ("heart_mesh", "torso_mesh"):
        for name, v in ((mesh_report or {}).get(part, {}).get("volumes") or {}).items():
            rows.setdefault(name, [name, v.get("labels_ml"), v.get("mesh_ml")])
    for name, ml in ((segmentation or {}).get("volumes_ml") or {}).items():
        rows.setdefault(name, [name, ml, None])
    return sorted(rows.values())


def warnings_of(files: CaseFiles) -> list[str]:
    """QC warnings gathered from the stages' reports."""
    out = []
    seg = files.json(f"{F.SEGMENTATION_DIR}/{F.SEGMENTATION_REPORT}")
    out += [f"segmentation: {w}" for w in (seg or {}).get("warnings", [])]
    mesh = files.json(F.MESH_REPORT) or {}
    out += [f"walls: {r}" for r in mesh.get("walls", {}).get("repairs", [])]
    out += [f"anatomy: {name.replace('_', ' ')} not in the labels, {info['status']} ({info.get('method', '')})"
            for name, info in mesh.get("walls", {}).get("outflow", {}).items() if info.get("observed") is False]
    for region, pieces in mesh.get("heart_mesh", {}).get("components", {}).items():
        if pieces > 1 and not region.endswith("_valve"):
            out.append(f"heart mesh: {region} is in {pieces} pieces (too thin for the mesh's edge length? "
                       "atrial walls need about 1 mm)")
    for part in ("heart_mesh", "torso_mesh"):
        q = mesh.get(part, {}).get("quality", {})
        if q.get("inverted") or q.get("zero_volume"):
            out.append(f"{part}: {q.get('inverted')} inverted and {q.get('zero_volume')} zero-volume elements")
    cal = files.json(f"{F.CALIBRATION_DIR}/{F.CALIBRATION}") or {}
    out += [f"calibration: {n}" for n in cal.get("notes", [])]
    return out


def report_html(files: CaseFiles, pictures: dict[str, Path | str], title: str) -> str:
    """The page (see the module docstring)."""
    parts = [f"<h1>{html.escape(title)}</h1><p>cardiotwin case report: <code>{html.escape(str(files.case))}</code></p>"]
    parts.append("<h2>Anatomy</h2>")
    for name in ("slices", "meshes", "fibres"):
        parts.append(_picture(PICTURES[name], pictures[name]))
    mesh = files.json(F.MESH_REPORT)
    rows = volumes_table(mesh, files.json(f"{F.SEGMENTATION_DIR}/{F.SEGMENTATION_REPORT}"))
    if rows:
        parts.append("<h3>Volumes</h3>" + _table(["structure", "labels (ml)", "mesh (ml)"], rows))
    quality = [[part, q.get("nodes"), q.get("tets"), q.get("dihedral_deg", {}).get("min"),
                q.get("radius_ratio", {}).get("median"), q.get("inverted")]
               for part in ("heart_mesh", "torso_mesh") if (q := (mesh or {}).get(part, {}).get("quality"))]
    if quality:
        parts.append("<h3>Mesh quality</h3>" + _table(
            ["mesh", "nodes", "tetrahedra", "min dihedral (deg)", "median radius ratio", "inverted"], quality))
    parts.append("<h2>Function</h2>")
    parts.append(_picture(PICTURES["activation"], pictures["activation"]))
    parts.append(_picture(PICTURES["ecg"], pictures["ecg"]))
    cal = files.json(f"{F.CALIBRATION_DIR}/{F.CALIBRATION}")
    if cal:
        per_lead = cal.get("per_lead_correlation", {})
        leads = list(dict.fromkeys(lead for w in per_lead.values() for lead in w))
        parts.append("<h3>Per-lead correlation</h3>" + _table(
            ["wave", *leads], [[w, *(v.get(lead) for lead in leads)] for w, v in per_lead.items()]))
        params = cal.get("parameters", {})
        scalars = {k: v for k, v in params.items() if not isinstance(v, list)}
        parts.append("<h3>Calibrated parameters</h3>" + _table(
            ["parameter", "value"], [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in scalars.items()]))
        for key, items in params.items():
            if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
                cols = list(dict.fromkeys(c for i in items for c in i))
                parts.append(f"<h3>{html.escape(key.replace('_', ' '))}</h3>"
                             + _table(cols, [[i.get(c) for c in cols] for i in items]))
            elif isinstance(items, list):
                parts.append(_table([key], [[json.dumps(items)]]))
    warnings = warnings_of(files)
    parts.append("<h2>QC warnings</h2>" + ("<ul>" + "".join(f"<li class='warn'>{html.escape(w)}</li>" for w in warnings)
                                           + "</ul>" if warnings else "<p>none</p>"))
    records = sorted((json.loads(p.read_text()) for p in (files.case / F.PROVENANCE_DIR).glob("*.json")),
                     key=lambda r: r.get("finished", ""))
    rows = []
    for r in records:
        rows.append([r.get("stage"), r.get("seconds"), r.get("finished"), r.get("host"), r.get("version"),
                     r.get("config_sha256", "")[:12],
                     ", ".join(f"{k}: {v['file']} ({v['sha256'][:8]})" for k, v in r.get("inputs", {}).items())])
    parts.append("<h2>Provenance</h2>" + _table(["stage", "seconds", "finished", "host", "version", "config",
                                                 "inputs (sha256)"], rows))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}{_CHECK}</body></html>")
