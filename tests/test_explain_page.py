"""The explainer's page and `catdog explain`: the numbers in the HTML are the arithmetic's and the app's,
the page fetches nothing, and the model file keeps the first saved epoch's weights for small models."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from helpers import make_dataset, make_image

from catdog_gui.cli import main
from catdog_gui.core.config import TrainConfig
from catdog_gui.core.errors import CatdogError
from catdog_gui.core.events import EpochEnd
from catdog_gui.core.inference import explainer
from catdog_gui.core.inference.explain_html import num
from catdog_gui.core.inference.predictor import Predictor
from catdog_gui.core.storage.modelfile import read_first_epoch, read_model_file
from catdog_gui.core.text import probability_text
from catdog_gui.core.training import model_writer
from catdog_gui.core.training.trainer import Trainer


class _Numbers(HTMLParser):
    """Reads back every explained unit's shown value and every probability from a page."""

    def __init__(self):
        super().__init__()
        self.unit = None
        self.values: dict[str, tuple[str, float]] = {}  # "c3:0,5,5" -> (text shown, data-v)
        self.probs: list[str] = []
        self.external: list[str] = []
        self._open = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == "unit":
            self.unit = f"{a['data-layer']}:{a.get('data-unit', '')}"
        elif tag == "div" and a.get("class") == "change":  # other weights' numbers
            self.unit = None
        for key in ("src", "href"):
            if key in a and not str(a[key]).startswith(("data:", "#")):
                self.external.append(a[key])
        if tag == "script":
            self.external.append("script")
        if a.get("class") in ("value", "prob") and self.unit is not None:
            self._open, self._text = (a["class"], float(a["data-v"])), ""

    def handle_data(self, data):
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag):
        if self._open is not None and tag in ("span", "td"):
            kind, v = self._open
            if kind == "value":
                self.values.setdefault(self.unit, (self._text.strip(), v))
            else:
                self.probs.append(self._text.strip())
            self._open = None


def _photo(tmp_path):
    return make_image(tmp_path / "pet.png", (200, 120, 60), size=(48, 40), seed=3)


def _check_page(text: str, ex) -> _Numbers:
    got = _Numbers()
    got.feed(text)
    assert got.external == []  # nothing fetched: the pictures are inline data
    assert len(got.values) >= 7
    for key, (shown, v) in got.values.items():
        layer, _, where = key.partition(":")
        c, y, x = (int(s) for s in where.split(","))
        u = ex.unit(layer, c, y, x)
        assert shown == num(u.value) and abs(v - u.value) < 1e-12, key
    return got


def test_page_shows_the_arithmetic_and_the_apps_probabilities(tmp_path, tiny_model):
    predictor = Predictor(tiny_model, "cpu")
    photo = _photo(tmp_path)
    ex = explainer.explain_photo(predictor, predictor.preprocess(photo), photo.name)
    got = _check_page(explainer.page_for(ex, ("c3", 0, 5, 5)), ex)
    assert "c3:0,5,5" in got.values and "s2:0,7,7" in got.values
    # the probabilities, as the Prediction tab prints them (its Predictor, not the explainer's numbers)
    pred = predictor.predict(photo)
    want = {c: probability_text(p) for c, p in pred.probabilities}
    assert got.probs[:2] == [want[c] for c in ex.trace.classes]
    assert ex.prediction_text == pred.describe()


def test_catdog_explain_writes_the_page(tmp_path, tiny_model, capsys):
    photo, out = _photo(tmp_path), tmp_path / "page.html"
    assert main(["explain", str(tiny_model), str(photo), "--out", str(out), "--unit", "c3:7,2,3"]) == 0
    printed = capsys.readouterr().out
    assert Predictor(tiny_model, "cpu").predict(photo).describe() in printed and str(out) in printed
    text = out.read_text("utf-8")
    assert 'data-layer="c3" data-unit="6,2,3"' in text and "What training changed" in text
    assert main(["explain", str(tiny_model), str(photo), "--out", str(tmp_path / "b.html"), "--unit", "c3:17"]) == 2
    assert "C3 has no map 17" in capsys.readouterr().err
    assert main(["explain", str(tiny_model), str(photo), "--out", str(tmp_path / "b.html"), "--unit", "c3:x"]) == 2
    assert "LAYER:MAP,Y,X" in capsys.readouterr().err
    assert not (tmp_path / "b.html").exists()


def test_a_backbone_is_refused_in_words():
    class Fake:
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2))

        class info:
            model_name = "efficientnet_lite0"

    with pytest.raises(CatdogError, match="pretrained backbone"):
        explainer.explain_photo(Fake(), np.zeros((3, 4, 4), np.uint8), "x.png")


def test_model_file_keeps_the_first_saved_epoch(tmp_path, tiny_model):
    kept = read_first_epoch(tiny_model)
    assert kept is not None and kept[0] == 1
    _info, best = read_model_file(tiny_model)
    assert set(kept[1]) == set(best)
    # one epoch: its weights are the best ones too, number for number
    events = []
    data = make_dataset(tmp_path / "data", 8)
    Trainer(TrainConfig(model="lenet5", epochs=1, seed=0, patience=0), [events.append]).fit(data, out_path=tmp_path / "one.pt")
    epoch, first = read_first_epoch(tmp_path / "one.pt")
    _info, state = read_model_file(tmp_path / "one.pt")
    assert epoch == 1 and all(torch.equal(first[k], state[k]) for k in state)
    assert next(e.epoch for e in events if isinstance(e, EpochEnd) and e.is_best) == 1


def test_first_epoch_differs_from_the_best_when_training_moved_on(tmp_path, tiny_model):
    info, best = read_model_file(tiny_model)
    epoch, first = read_first_epoch(tiny_model)
    if info.metrics["best_epoch"] > epoch:
        assert any(not torch.equal(first[k], best[k]) for k in best)
        predictor = Predictor(tiny_model, "cpu")
        ex = explainer.explain_photo(predictor, predictor.preprocess(_photo(tmp_path)), "pet.png")
        a, b = ex.first_unit("c1", 0, 3, 3), ex.unit("c1", 0, 3, 3)
        assert not np.array_equal(a.terms[0].kernel, b.terms[0].kernel)
        assert np.array_equal(a.terms[0].kernel, first["c1.weight"][0, 0].double().numpy())
    else:  # the seeded tiny run peaks later than epoch 1; if it ever did not, this test says so
        pytest.fail(f"tiny_model's best epoch is {info.metrics['best_epoch']}: pick a run that improves after epoch 1")


def test_large_models_keep_no_first_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(model_writer, "FIRST_EPOCH_MAX_PARAMS", 1000)
    data = make_dataset(tmp_path / "data", 8)
    Trainer(TrainConfig(model="lenet5", epochs=1, seed=0, patience=0)).fit(data, out_path=tmp_path / "m.pt")
    assert read_first_epoch(tmp_path / "m.pt") is None


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_in_a_real_browser_shows_the_same_numbers(tmp_path, tiny_model):
    predictor = Predictor(tiny_model, "cpu")
    photo = _photo(tmp_path)
    ex = explainer.explain_photo(predictor, predictor.preprocess(photo), photo.name)
    page = explainer.write_page(tmp_path / "page.html", explainer.page_for(ex, ("c3", 0, 5, 5)))
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "<body>" in dom
    got = _check_page(dom, ex)  # the DOM the browser built, not the file's text
    pred = predictor.predict(photo)
    assert sorted(got.probs[:2]) == sorted(probability_text(p) for _c, p in pred.probabilities)


def test_a_mirror_averaging_model_says_what_the_prediction_tab_shows(tmp_path, tiny_model):
    from PIL import Image

    half = np.zeros((32, 32, 3), np.uint8)
    half[:, :16] = (230, 40, 30)  # red on the left, blue on the right: the mirror image differs
    half[:, 16:] = (20, 40, 220)
    photo = tmp_path / "halves.png"
    Image.fromarray(half).save(photo)
    plain = Predictor(tiny_model, "cpu", tta=False)
    tta = Predictor(tiny_model, "cpu", tta=True)
    ex = explainer.explain_photo(plain, plain.preprocess(photo), photo.name)
    assert ex.mirrored_text == "" and explainer.mirrored_note(ex) == ""
    ex = explainer.explain_photo(tta, tta.preprocess(photo), photo.name)
    assert ex.mirrored_text == tta.predict(photo).describe()  # what the Prediction tab prints
    assert ex.prediction_text == plain.predict(photo).describe()  # the units' own softmax
    assert ex.mirrored_text != ex.prediction_text  # the photo is not mirror-symmetric: the numbers differ
    assert ex.mirrored_text in explainer.page_for(ex)
