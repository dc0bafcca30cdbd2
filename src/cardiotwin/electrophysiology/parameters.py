"""The named parameters of the electrophysiology model: units, defaults and plausible ranges.

The ranges are the calibration's search space. Sources:
* myocardial conduction velocity 0.5-0.7 mm/ms along fibres, anisotropy ratio ~2.5-3 (Taggart et al.
  2000, J Mol Cell Cardiol 32:621; Roberts & Scher 1982);
* a fast endocardial (Purkinje-like) layer of 1-3 mm at 1-4 mm/ms and sinus-rhythm root nodes
  (Gillette et al. 2021, Med Image Anal 71:102080; Camps et al. 2021, Med Image Anal 71:102047);
* earliest ventricular activation sites (Durrer et al. 1970, Circulation 41:899): high on the
  anterior paraseptal LV wall, central on the left septal surface, posterior paraseptal at about a
  third of the apex-base distance, and on the RV near the anterior papillary muscle (moderator
  band) 5-10 ms later;
* atrial conduction 0.7-1.2 mm/ms with faster bundles (Bachmann's bundle, crista terminalis,
  pectinate muscles 1.2-2 mm/ms; Harrild & Henriquez 2000, Circ Res 87:e25; Loewe et al. 2016);
* the sinus node's leading pacemaker shifts along the crista terminalis, from the SVC junction
  down toward the IVC (a multicentric pacemaker complex; Boineau et al. 1988, Circulation 77:1221),
  and the LA is excited through Bachmann's bundle and the septal rim of the fossa ovalis (Lemery et
  al. 2007, Heart Rhythm 4:1157), either route slowed in interatrial block (Bayes de Luna et al.
  2012, J Electrocardiol 45:445);
* action-potential duration heterogeneity: epicardium 40-60+ ms shorter than endocardium, needed for
  upright T waves (Higuchi & Nakaya 1984, reviewed by Yan & Martin 2003, J Cardiovasc
  Electrophysiol 14:639), apex shorter than base (larger IKs/IKr at the apex; Szentadrassy et al.
  2005, Cardiovasc Res 65:851), RV shorter than LV (Ramanathan et al. 2006, Circulation 113:1148);
* APD shortening where activation is late (activation-repolarisation coupling; Franz et al. 1987,
  Circulation 75:379; Hanson et al. 2009, Circ Arrhythm Electrophysiol 2:162) and electrotonic
  smoothing of repolarisation (Gima & Rudy 2002, Circ Res 90:889): see
  :mod:`cardiotwin.electrophysiology.repolarisation`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from cardiotwin.errors import InvalidParameterError


@dataclass(frozen=True)
class Spec:
    units: str
    low: float
    high: float
    doc: str


@dataclass(frozen=True)
class RootNode:
    """A sinus-rhythm root node on the ventricular endocardium, in universal ventricular coordinates:
    ``apicobasal`` in [0, 1], ``rotational`` in radians (0 septum, > 0 anterior), ``ventricle``
    "lv" or "rv", activated ``delay_ms`` after the earliest root. An "rv" root lies on the RV
    free-wall endocardium, in the RV's own coordinates (the RV septal surface has LV coordinates)."""

    name: str
    apicobasal: float
    rotational: float
    ventricle: str
    delay_ms: float = 0.0


DURRER_ROOTS = (
    RootNode("lv_anterior_paraseptal", 0.70, 0.55, "lv", 0.0),
    RootNode("lv_septal_central", 0.50, 0.0, "lv", 0.0),
    RootNode("lv_posterior_paraseptal", 0.33, -0.55, "lv", 2.0),
    RootNode("rv_moderator_band", 0.40, 0.45, "rv", 5.0),
)

SPECS: dict[str, Spec] = {
    "cv_fibre": Spec("mm/ms", 0.35, 0.9, "ventricular conduction velocity along the fibres"),
    "cv_transverse": Spec("mm/ms", 0.12, 0.45, "ventricular conduction velocity across the fibres"),
    "cv_endo": Spec("mm/ms", 1.0, 4.0, "fast endocardial (Purkinje-like) layer, isotropic"),
    "endo_depth_mm": Spec("mm", 0.5, 4.0, "depth of the fast endocardial layer"),
    "cv_atrial_fibre": Spec("mm/ms", 0.5, 1.4, "atrial conduction velocity along the fibres"),
    "cv_atrial_transverse": Spec("mm/ms", 0.2, 0.7, "atrial conduction velocity across the fibres"),
    "atrial_bundle_factor": Spec("1", 1.0, 2.5, "speed-up of Bachmann's bundle, crista terminalis, pectinates"),
    "av_delay": Spec("ms", 40.0, 200.0, "from AV-node activation to the first ventricular root node"),
    "sinus_site": Spec("1", 0.0, 0.6, "leading pacemaker site along the crista terminalis, as a fraction of its "
                       "length from the SVC junction (0) toward the IVC (1)"),
    "bachmann_delay_ms": Spec("ms", 0.0, 40.0, "extra delay of the interatrial route through Bachmann's bundle "
                              "(large: interatrial block)"),
    "septal_delay_ms": Spec("ms", 0.0, 40.0, "extra delay of the interatrial route over the septum "
                            "(fossa-ovalis rim)"),
    "apd_mean": Spec("ms", 150.0, 450.0, "mean ventricular action-potential duration (a long QT needs ~400)"),
    "apd_transmural": Spec("ms", -60.0, 120.0, "APD endocardium minus epicardium (negative: reversed, e.g. ischaemia)"),
    "apd_apicobasal": Spec("ms", -60.0, 120.0, "APD apex minus base"),
    "apd_rv": Spec("ms", -40.0, 20.0, "APD RV minus LV"),
    "apd_apicobasal_mid": Spec("ms", -40.0, 40.0, "APD mid-ventricle minus apex and base"),
    "apd_septal": Spec("ms", -40.0, 40.0, "APD septum minus LV lateral wall"),
    "apd_anterior": Spec("ms", -40.0, 40.0, "APD anterior minus posterior LV wall"),
    "apd_atrial": Spec("ms", 150.0, 300.0, "atrial action-potential duration"),
    "ap_repolarisation_ms": Spec("ms", 10.0, 150.0, "10-90 % fall time of phase 3 of the ventricular action "
                                 "potential: the T wave's width and slope"),
    "apd_coupling": Spec("1", 0.0, 1.0, "activation-repolarisation coupling: APD shortening per ms of later "
                         "activation (0: RT = AT + APD; 1: RT independent of the activation sequence)"),
    "rt_smoothing_mm": Spec("mm", 0.0, 12.0, "electrotonic smoothing length of the repolarisation times along "
                            "the fibres (0: none)"),
}


@dataclass(frozen=True)
class EpParameters:
    """One parameter set θ of the sinus-rhythm model (defaults: a normal adult heart)."""

    cv_fibre: float = 0.6
    cv_transverse: float = 0.24
    cv_endo: float = 1.2
    endo_depth_mm: float = 2.0
    cv_atrial_fibre: float = 1.2
    cv_atrial_transverse: float = 0.55
    atrial_bundle_factor: float = 1.8
    av_delay: float = 100.0
    sinus_site: float = 0.0
    bachmann_delay_ms: float = 0.0
    septal_delay_ms: float = 0.0
    apd_mean: float = 290.0
    apd_transmural: float = 80.0
    apd_apicobasal: float = -30.0
    apd_rv: float = -20.0
    apd_apicobasal_mid: float = 0.0
    apd_septal: float = 0.0
    apd_anterior: float = 0.0
    apd_atrial: float = 200.0
    ap_repolarisation_ms: float = 30.0
    apd_coupling: float = 0.0
    rt_smoothing_mm: float = 0.0
    roots: tuple[RootNode, ...] = field(default=DURRER_ROOTS)

    def __post_init__(self) -> None:
        for name, spec in SPECS.items():
            value = getattr(self, name)
            if not np.isfinite(value) or not spec.low <= value <= spec.high:
                raise InvalidParameterError(
                    f"{name} = {value} {spec.units} is outside its plausible range [{spec.low}, {spec.high}] "
                    f"({spec.doc})"
                )
        if self.cv_transverse > self.cv_fibre:
            raise InvalidParameterError("cv_transverse must not exceed cv_fibre")
        if not self.roots:
            raise InvalidParameterError("at least one root node is needed")
        for root in self.roots:
            if root.ventricle not in ("lv", "rv") or not 0.0 <= root.apicobasal <= 1.0:
                raise InvalidParameterError(f"root node {root}: ventricle must be lv/rv and apicobasal in [0, 1]")
            if not (np.isfinite(root.delay_ms) and -20.0 <= root.delay_ms <= 60.0):
                raise InvalidParameterError(f"root node {root.name}: delay_ms must lie in [-20, 60]")

    def with_values(self, **values) -> "EpParameters":
        return replace(self, **values)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["roots"] = [asdict(r) for r in self.roots]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "EpParameters":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidParameterError(f"unknown parameters {sorted(unknown)}; known: {sorted(known)}")
        values = dict(data)
        if "roots" in values:
            values["roots"] = tuple(RootNode(**r) for r in values["roots"])
        return cls(**values)


