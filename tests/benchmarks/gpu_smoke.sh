#!/usr/bin/env bash
# GPU smoke check, for a session that is lent a CUDA machine (the `device` tool): one short script,
# run by hand, that prints what happened. Not part of the test suite (CI has no GPU).
#
#   bash tests/benchmarks/gpu_smoke.sh [DATA]
#
# 1. LeNet-5 trains on CUDA (2 epochs) and predicts; 2. EfficientNet-Lite0 transfer learning (the
# default pretrained model) trains on CUDA and predicts; 3. a 1-process torchrun with NCCL trains;
# 4. the window (offscreen) starts a run with its Train button, through its training process.
set -uo pipefail
cd "$(dirname "$0")/../.."
data="${1:-${CATDOG_TEST_DATA:-../shared/datasets/catdog-1800}}"
out="$(mktemp -d)"
python - <<'EOF'
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
cat_img="$(ls "$data"/cat/* | head -1)"
dog_img="$(ls "$data"/dog/* | head -1)"
echo "== LeNet-5 on CUDA"
python -m catdog_gui.cli train "$data" --model lenet5 --epochs 2 --device cuda --quiet --out "$out/lenet.pt" | tail -4
python -m catdog_gui.cli predict "$out/lenet.pt" "$cat_img" "$dog_img" --device cuda
echo "== EfficientNet-Lite0 transfer learning on CUDA"
python -m catdog_gui.cli train "$data" --pretrained --epochs 3 --device cuda --quiet --out "$out/lite.pt" | tail -4
python -m catdog_gui.cli predict "$out/lite.pt" "$cat_img" "$dog_img" --device cuda
echo "== the tests that need CUDA (skipped on machines without one)"
CATDOG_TEST_DATA="$data" python -m pytest -q -p no:cacheprovider tests/test_augment.py -k cuda -rs | tail -2
echo "== torchrun, 1 process, NCCL"
torchrun --standalone --nproc_per_node=1 -m catdog_gui.cli train "$data" --pretrained --epochs 2 --quiet \
    --out "$out/ddp.pt" 2>&1 | grep -E "Training|epoch|Saved|error" | tail -5
echo "== the window's Train button, 1 GPU, through the training process"
QT_QPA_PLATFORM=offscreen python - "$data" "$out" <<'EOF'
import sys, time
sys.path.insert(0, "tests/gui")
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication
from eventloop import wait_until
QStandardPaths.setTestModeEnabled(True)
app = QApplication([])
from catdog_gui.gui.main_window import MainWindow
from catdog_gui.gui.settings import Settings
win = MainWindow(Settings(sys.argv[2] + "/settings.ini"), models_folder=sys.argv[2] + "/models")
win.ensure_backend()
wait_until(lambda: win.training_tab.backend_ready, 300, "the engine")
win.data.set_folders(sys.argv[1])
wait_until(lambda: win.data.dataset is not None, 300, "the scan")
t = win.training_tab
t.select_model("lenet5")
t.form.hyper["epochs"].setValue(2)
t0 = time.time()
assert t.start_training()
wait_until(lambda: t.run.finished_event is not None and not t.run.is_active(), 600, "the run")
fin = t.run.finished_event
print(f"window run: {fin.status}, {t.run.device}, validation accuracy {fin.best_val_acc:.1%}, "
      f"{time.time() - t0:.1f} s, model {fin.best_path}")
win.close()
EOF
rm -rf "$out"
