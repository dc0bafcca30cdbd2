"""Names of the files in a case folder and of the fields the stages add to meshes, defined once.

A case folder (``cardiotwin build``; ``cardiotwin mesh`` then ``cardiotwin fibres`` into the same
folder lay it out the same way). No stage writes a file that another stage wrote:

* anatomy (walls, landmarks, meshes): :data:`LABELS_WALLS`, :data:`LABELS_TORSO` (when the torso
  was extended), :data:`HEART_MESH` (tags only; openCARP ``heart_mesh.pts/.elem``), :data:`TORSO`,
  :data:`LANDMARKS`, :data:`MESH_REPORT`;
* twin (coordinates, fibres, conduction fields): :data:`HEART` (openCARP ``heart.pts/.elem/.lon``);
* lead fields: :data:`LEAD_FIELDS`;
* a simulated beat, in :data:`SIMULATION_DIR`: :data:`HEART_EP`, :data:`EP_SUMMARY`, :data:`ECG_CSV`;
* calibration: :data:`PARAMETERS`, :data:`CALIBRATION`, :data:`FITTED_ECG`, :data:`MEASURED_BEAT`,
  :data:`OVERLAY`, and the calibrated twin's beat (:data:`HEART_EP`, :data:`EP_SUMMARY`).

``cardiotwin run`` adds, in one case folder: :data:`PHANTOM_DIR` (a synthetic patient's image and
labels), :data:`SEGMENTATION_DIR` (labels and :data:`SEGMENTATION_REPORT`), :data:`CALIBRATION_DIR`,
:data:`REPORT` (with its pictures ``report_*.png``) and :data:`PROVENANCE_DIR` (one record per stage).
"""

LABELS_WALLS = "labels_walls.nii.gz"
LABELS_TORSO = "labels_torso.nii.gz"
HEART_MESH = "heart_mesh.vtu"
TORSO = "torso.vtu"
LANDMARKS = "landmarks.json"
MESH_REPORT = "mesh_report.json"
HEART = "heart.vtu"
LEAD_FIELDS = "leadfields.npz"
SIMULATION_DIR = "simulation"
HEART_EP = "heart_ep.vtu"
EP_SUMMARY = "ep_summary.json"
ECG_CSV = "ecg.csv"
PARAMETERS = "parameters.json"
CALIBRATION = "calibration.json"
FITTED_ECG = "fitted_ecg.csv"
MEASURED_BEAT = "measured_beat.csv"
OVERLAY = "overlay.png"
BUILD_REPORT = "build_report.json"
PHANTOM_DIR = "phantom"
PHANTOM_IMAGE = "image.nii.gz"
PHANTOM_LABELS = "labels.nii.gz"
SEGMENTATION_DIR = "segmentation"
SEGMENTATION_LABELS = "labels.nii.gz"
SEGMENTATION_REPORT = "segmentation.json"
CALIBRATION_DIR = "calibration"
PROVENANCE_DIR = "provenance"
REPORT = "report.html"


def opencarp_base(mesh_file: str) -> str:
    """The openCARP basename (``.pts/.elem/.lon`` added) of a mesh file name."""
    return mesh_file.removesuffix(".vtu")


# point fields of a simulated beat (ms)
ACTIVATION = "activation_ms"
REPOLARISATION = "repolarisation_ms"
APD = "apd_ms"
