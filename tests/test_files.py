"""core.files: the one "image files under a folder" walk, copying into a dataset, the CSV."""

from __future__ import annotations

import threading

from catdog_gui.core.storage.files import add_to_dataset
from catdog_gui.core.data.layouts import list_images, walk_files


def test_list_images_sorted_hidden_skipped_others_counted(tmp_path):
    for rel in ("b.jpg", "a.png", "notes.txt", ".hidden.jpg", "sub/c.jpg", ".git/d.jpg", "sub/deeper/e.webp"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    images, others = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["a.png", "b.jpg", "sub/c.jpg", "sub/deeper/e.webp"]
    assert others == 1
    # the dataset scan walks the same files
    assert [p for p in walk_files(tmp_path) if p.suffix != ".txt"] == images
    stop = threading.Event()
    stop.set()
    assert list_images(tmp_path, stop) == ([], 0)  # cancelled: what it had so far


def test_api_predict_on_a_folder_uses_the_same_listing(tmp_path):
    from catdog_gui import api

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.jpg").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "b.jpg").write_bytes(b"x")
    assert api._image_paths(tmp_path) == list_images(tmp_path)[0] == [tmp_path / "x" / "a.jpg"]


def test_pasted_bytes_go_into_the_class_folder_under_a_new_name(tmp_path):
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "JPEG")
    ds = tmp_path / "ds"
    (ds / "cat").mkdir(parents=True)
    (ds / "dog").mkdir()
    dest, msg = add_to_dataset(buf.getvalue(), ds, "dog")
    assert dest.parent == ds / "dog" and dest.name.startswith("pasted-") and dest.suffix == ".jpg"
    assert dest.read_bytes() == buf.getvalue() and "Continue training" in msg
    dest2, msg2 = add_to_dataset(buf.getvalue(), ds, "dog")
    assert dest2 != dest and dest.exists() and dest2.exists()
