"""The four-chamber heart of the phantom: chambers, walls, valves and great vessels as solids.

The heart is built in a local frame at the centre of the LV base plane: ``ex`` points from the LV
towards the RV (septal normal), ``ez`` from the apex to the base (LV long axis), ``ey = ez x ex``.
The LV is a truncated prolate ellipsoid (Streeter & Hanna 1973's classic idealisation), the RV a
second ellipsoid wrapped around the septum and cut by the LV epicardium (giving its crescent), the
atria ellipsoids above the atrioventricular valves, and the vessels tapered tubes along
centrelines. Valves are 2 mm discs between each chamber and its inflow/outflow, placed as in a
heart: mitral and aortic side by side at the LV base (mitral-aortic continuity), tricuspid
posterior-right, pulmonary anterior-superior-left of the aortic valve.

Walls other than the LV myocardium are grown outward from their blood pool with a thickness that
varies smoothly (+-12 %) around the patient's mean, like real walls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cardiotwin.labels import LABELS as L
from cardiotwin.phantom.params import PhantomParams
from cardiotwin.anatomy.walls import WallRule, default_rules
from cardiotwin.phantom.raster import Paint
from cardiotwin.phantom.shapes import Clipped, Disc, Ellipsoid, Tube, polyline_tubes, unit
from cardiotwin.phantom.tissue import Tissue

VALVE_THICKNESS = 2.0
WALL_PARAM = {"rv_myocardium": "rv_wall", "la_wall": "la_wall", "ra_wall": "ra_wall",
              "aorta_wall": "aorta_wall", "pulmonary_artery_wall": "pa_wall"}
LEFT, POSTERIOR, SUPERIOR = np.eye(3)  # LPS body axes
BODY_AXES = np.eye(3)


def heart_frame(p: PhantomParams) -> np.ndarray:
    """Columns ex, ey, ez of the heart frame in body (LPS) coordinates."""
    az, el = np.radians(p.apex_azimuth_deg), np.radians(p.apex_elevation_deg)
    apex_dir = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), -np.sin(el)])
    ez = -apex_dir
    roll = np.radians(45.0 + p.septum_roll_deg)
    hint = np.array([-np.cos(roll), -np.sin(roll), 0.0])  # right-anterior: where the RV lies
    ex = unit(hint - hint.dot(ez) * ez)
    ey = np.cross(ez, ex)
    return np.column_stack([ex, ey, ez])


@dataclass
class HeartModel:
    """Solids, paint order, walls and true landmarks of one phantom heart (body coordinates, mm)."""

    params: PhantomParams
    base_center: np.ndarray
    frame: np.ndarray = field(init=False)
    paints: list[Paint] = field(init=False, default_factory=list)
    walls: list[WallRule] = field(init=False, default_factory=list)
    max_wall_mm: float = field(init=False, default=0.0)
    landmarks: dict[str, list[float]] = field(init=False, default_factory=dict)
    spine_center_xy: tuple[float, float] = (0.0, 80.0)
    inferior_z: float = -200.0

    def __post_init__(self) -> None:
        self.frame = heart_frame(self.params)
        self._build()

    # local (a, b, c) -> body
    def at(self, a: float, b: float, c: float) -> np.ndarray:
        return self.base_center + self.frame @ np.array([a, b, c], dtype=float)

    def _build(self) -> None:
        p, F = self.params, self.frame
        ex, ey, ez = F.T
        k = p.lv_radius / 24.5  # valve and outflow geometry scales with the LV base
        r, length, t = p.lv_radius, p.lv_length, p.lv_wall
        b0 = 12.0 * k  # base plane above the ellipsoid equator
        cap_lv = 0.6 * t  # myocardium closing the LV base between the orifices
        center_lv = self.at(0, 0, -b0)
        lv_endo = Clipped(Ellipsoid(center_lv, F, (r, r, length)), self.at(0, 0, -cap_lv), ez)
        lv_epi = Clipped(Ellipsoid(center_lv, F, (r + t, r + t, length + 0.75 * t)), self.base_center, ez)

        # mitral and aortic orifices side by side at the LV base
        mv_center, mv_r = self.at(-10 * k, -5 * k, 0), 12.5 * k
        mv_open = Tube(self.at(-10 * k, -5 * k, -cap_lv - 1), mv_center, mv_r, mv_r, flat_ends=True)
        lvot_start = self.at(7 * k, 8 * k, -18 * k)
        av_center, av_r = self.at(10 * k, 13 * k, 5 * k), 10.5 * k * p.aorta_radius / 14.5
        av_n = unit(av_center - lvot_start)
        lvot = Tube(lvot_start, av_center, av_r, av_r, flat_ends=True)
        lvot_collar = Tube(lvot_start, av_center + av_n * VALVE_THICKNESS, av_r + 3.0, av_r + 3.0, flat_ends=True)

        # right ventricle: an ellipsoid tilted outwards at the base, cut by the LV epicardium
        s = p.rv_scale * (r + t) / 34.5  # RV cross-section follows the LV's, its length the LV length
        sl = p.rv_scale * length / 78.0
        tilt = np.radians(14.0)
        rv_axes = np.column_stack([np.cos(tilt) * ex - np.sin(tilt) * ez, ey, np.sin(tilt) * ex + np.cos(tilt) * ez])
        rv_center = self.at(20 * s, 2 * s, -14 * sl)
        rv_shell = Ellipsoid(rv_center, rv_axes, (35 * s, 48 * s, 72 * sl))
        cap_rv = p.rv_wall
        rv_body = Clipped(rv_shell, self.at(0, 0, -cap_rv), ez)
        tv_center, tv_r = self.at(47 * s, -14 * s, 0), 13.0 * s
        tv_open = Tube(self.at(47 * s, -14 * s, -cap_rv - 1), tv_center, tv_r, tv_r, flat_ends=True)
        pv_center, pv_r = self.at(22 * s, 40 * s, 14 * s), 0.85 * p.pa_radius
        rvot_start = self.at(40 * s, 30 * s, -22 * sl)
        pv_n = unit(pv_center - rvot_start)
        rvot = Tube(rvot_start, pv_center, pv_r + 2, pv_r, flat_ends=True)

        # valve planes (2 mm discs on top of each orifice)
        # (1.5 mm wider than the orifice, so the annulus seals the rim against voxel staircases)
        mitral = Disc(mv_center, ez, mv_r + 1.5, VALVE_THICKNESS)
        tricuspid = Disc(tv_center, ez, tv_r + 1.5, VALVE_THICKNESS)
        aortic = Disc(av_center, av_n, av_r + 1.5, VALVE_THICKNESS)
        pulmonary = Disc(pv_center, pv_n, pv_r + 1.5, VALVE_THICKNESS)

        # atria above the AV valves: LA posterior, RA right; vestibules join them to the valves
        sa = p.atrial_scale
        la_semi = np.array([32.0, 21.0, 24.0]) * sa
        ra_semi = np.array([24.0, 25.0, 28.0]) * sa
        la_center = mv_center + ez * (VALVE_THICKNESS + 0.8 * la_semi[2]) + POSTERIOR * 8 + LEFT * 4
        ra_center = tv_center + ez * (VALVE_THICKNESS + 0.8 * ra_semi[2]) + POSTERIOR * 4 - LEFT * 6
        # atrial cavities stay a wall's thickness above the valve plane (the wall closes the floor)
        la = Clipped(Ellipsoid(la_center, BODY_AXES, tuple(la_semi)), self.at(0, 0, VALVE_THICKNESS + p.la_wall), -ez)
        ra = Clipped(Ellipsoid(ra_center, BODY_AXES, tuple(ra_semi)), self.at(0, 0, VALVE_THICKNESS + p.ra_wall), -ez)
        la_vest = Tube(mv_center + ez * VALVE_THICKNESS, la_center, mv_r, mv_r * 0.9, flat_ends=True)
        ra_vest = Tube(tv_center + ez * VALVE_THICKNESS, ra_center, tv_r, tv_r * 0.9, flat_ends=True)

        # great vessels
        ra_a = p.aorta_radius
        spine_x, spine_y = self.spine_center_xy
        av_top = av_center + av_n * VALVE_THICKNESS
        root = av_top + av_n * 22
        asc_top = root + np.array([-8.0, -4.0, 45.0])
        arch = np.array([spine_x + 6.0, asc_top[1] + 35.0, asc_top[2] + 24.0])
        desc_top = np.array([spine_x + 26.0, spine_y - 32.0, asc_top[2] + 2.0])
        desc_bottom = np.array([desc_top[0], desc_top[1] + 4.0, self.inferior_z])
        aorta_line = np.array([av_top, root, asc_top, arch, desc_top, desc_top - [0, 0, 40], desc_bottom])
        aorta_r = ra_a * np.array([0.72, 1.0, 0.95, 0.88, 0.8, 0.75, 0.72])
        aorta = polyline_tubes(aorta_line, aorta_r)
        aorta[0] = Tube(aorta[0].p0, aorta[0].p1, aorta[0].r0, aorta[0].r1, flat_ends=True)

        pv_top = pv_center + pv_n * VALVE_THICKNESS
        bif = pv_top + 38 * unit(pv_n + 0.6 * SUPERIOR + 0.9 * POSTERIOR)
        lpa_end = bif + np.array([38.0, 28.0, -4.0])
        rpa_end = bif + np.array([-62.0, 22.0, -8.0])
        pa_trunk = Tube(pv_top, bif, 0.85 * p.pa_radius, p.pa_radius, flat_ends=True)
        pa = [pa_trunk, Tube(bif, lpa_end, 0.8 * p.pa_radius, 0.65 * p.pa_radius),
              Tube(bif, rpa_end, 0.8 * p.pa_radius, 0.65 * p.pa_radius)]

        svc = [Tube(ra_center + SUPERIOR * 0.6 * ra_semi[2] - POSTERIOR * 2,
                    ra_center + SUPERIOR * 95 + POSTERIOR * 6, 10.0, 9.5)]
        ivc = [Tube(ra_center - SUPERIOR * 0.6 * ra_semi[2] + POSTERIOR * 6,
                    np.array([ra_center[0] + 8, ra_center[1] + 20, self.inferior_z]), 12.0, 12.0)]
        veins = []
        for side in (+1, -1):  # left (+x) and right (-x) pulmonary veins, superior and inferior
            for dz in (+9.0, -9.0):
                start = la_center + LEFT * side * 0.55 * la_semi[0] + SUPERIOR * dz * sa + POSTERIOR * 4
                veins.append(Tube(start, start + unit([side * 1.0, 0.55, 0.08 * np.sign(dz)]) * 40, 7.0, 6.0))

        myo, art, ven = Tissue.MYOCARDIUM, Tissue.ARTERIAL_BLOOD, Tissue.VENOUS_BLOOD
        empty = (0,)
        self.paints = [
            Paint(aorta, L["aorta"], art, empty),
            Paint(pa, L["pulmonary_artery"], ven, empty),
            Paint(svc, L["superior_vena_cava"], ven, empty),
            Paint(ivc, L["inferior_vena_cava"], Tissue.IVC_BLOOD, empty),
            Paint(veins, L["pulmonary_veins"], art, empty),
            Paint([la, la_vest], L["la_blood"], art, (0, L["pulmonary_veins"])),
            Paint([ra, ra_vest], L["ra_blood"], ven, (0, L["superior_vena_cava"], L["inferior_vena_cava"])),
            Paint([rv_body, tv_open, rvot], L["rv_blood"], ven, None),
            Paint([lv_epi], L["lv_myocardium"], myo, None),
            Paint([lvot_collar], L["lv_myocardium"], myo, empty),
            Paint([lv_endo, mv_open, lvot], L["lv_blood"], art, None),
            Paint([mitral], L["mitral_valve"], Tissue.VALVE, None),
            Paint([tricuspid], L["tricuspid_valve"], Tissue.VALVE, None),
            Paint([aortic], L["aortic_valve"], Tissue.VALVE, None),
            Paint([pulmonary], L["pulmonary_valve"], Tissue.VALVE, None),
        ]
        # walls grow outward from their pools with a smoothly varying thickness (+-12 %); the rule
        # keeps lumens that touch apart by the wall (the same engine rebuilds walls on real data)
        rng = np.random.default_rng(p.seed + 7919)
        self.walls = [
            WallRule(rule.wall, rule.pools, _thickness_field(getattr(p, WALL_PARAM[rule.wall]), rng), rule.keep_apart)
            for rule in default_rules() if rule.wall in WALL_PARAM
        ]
        self.max_wall_mm = 1.15 * max(getattr(p, name) for name in WALL_PARAM.values())
        apex_endo = center_lv - ez * length
        self.landmarks = {
            "lv_apex_endocardium": apex_endo,
            "lv_apex_epicardium": center_lv - ez * (length + 0.75 * p.lv_wall),
            "lv_base_center": self.base_center,
            "lv_long_axis": ez,
            "septal_direction": ex,
            "mitral_valve_center": mv_center, "mitral_valve_normal": ez,
            "tricuspid_valve_center": tv_center, "tricuspid_valve_normal": ez,
            "aortic_valve_center": av_center, "aortic_valve_normal": av_n,
            "pulmonary_valve_center": pv_center, "pulmonary_valve_normal": pv_n,
            "la_center": la_center, "ra_center": ra_center,
            # sinus node: RA wall at the SVC junction, lateral (Sanchez-Quintana et al. 2005, Heart 91:189)
            "sinus_node": ra_center + SUPERIOR * 0.75 * ra_semi[2] - LEFT * 0.55 * ra_semi[0],
            # AV node: apex of Koch's triangle, RA side of the septum just above the tricuspid annulus
            "av_node": tv_center + ez * (VALVE_THICKNESS + 4) - ex * 0.8 * tv_r,
        }
        self.landmarks = {k: np.asarray(v, dtype=float).round(3).tolist() for k, v in self.landmarks.items()}


def _thickness_field(mean: float, rng: np.random.Generator):
    """A smooth thickness field: mean x (1 + 0.12 sin(k . x + phase)), wavelength ~ 60-90 mm."""
    direction = unit(rng.standard_normal(3))
    wavenumber = 2 * np.pi / rng.uniform(60.0, 90.0)
    phase = rng.uniform(0, 2 * np.pi)

    def thickness(x, y, z):
        return mean * (1.0 + 0.12 * np.sin(wavenumber * (direction[0] * x + direction[1] * y + direction[2] * z) + phase))

    return thickness
