"""Sample photos (core/data/sample_photos.py, core/storage/download.py, core/storage/unzip.py) against a local HTTP server on 127.0.0.1: a good archive, a
truncated one, a wrong checksum, unsafe entries, a connection dropped halfway (resumed with a
Range request), cancel and resume, offline and server errors, the unpacking limits, and
`catdog get-samples`. No other address is ever contacted."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from catdog_gui.core.data import sample_photos as samples
from catdog_gui.core.storage import download
from catdog_gui.core.text import duration_text
from catdog_gui.core.errors import Cancelled
from catdog_gui.core.data.scan import scan_dataset
from catdog_gui.core.data.layouts import split_layout
from catdog_gui.core.errors import DownloadError
from catdog_gui.core.storage.unzip import extract_zip, safe_parts
from catdog_gui.core.data.sample_photos import get_samples
from tests.archive_server import ArchiveServer, sample_zip


@pytest.fixture
def server():
    with ArchiveServer(lifetime=60) as s:
        yield s


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)


FAST = dict(retry_delay=0.01, timeout=5)


def _big_zip() -> bytes:
    """The sample layout plus a stored 400 kB entry, so a download takes several chunks."""
    noise = np.random.default_rng(0).integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    return sample_zip(extra=[("cats_and_dogs_filtered/noise.bin", noise)])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_archive_unpacks_and_scans_as_train_and_validation(server, tmp_path):
    body = sample_zip()
    url = server.add("/cats_and_dogs_filtered.zip", body)
    seen = []
    res = get_samples(tmp_path / "pets", url=url, progress=seen.append, **FAST)
    dest = tmp_path / "pets"
    assert res.folder == dest and res.url == url
    assert sorted(p.name for p in dest.iterdir()) == ["train", "validation", "vectorize.py"]
    assert _leftovers(tmp_path) == ["pets"]  # no archive, no .part, no temporary folder
    ds = scan_dataset(dest)
    r = ds.report
    assert r.val_source == "folder" and r.val_root == dest / "validation"
    assert ds.classes == ["cats", "dogs"] and r.train_counts == {"cats": 6, "dogs": 6}
    assert r.val_counts == {"cats": 3, "dogs": 3}
    stages = {p.stage for p in seen}
    assert stages == {"download", "extract"}
    last = [p for p in seen if p.stage == "download"][-1]
    assert last.done == last.total == len(body)
    # checked with the right checksum too (the check can pass)
    res2 = get_samples(tmp_path / "again", url=url, sha256=hashlib.sha256(body).hexdigest(), **FAST)
    assert (res2.folder / "train" / "cats").is_dir()


def test_truncated_archive_is_refused_and_not_kept(server, tmp_path):
    body = sample_zip()
    url = server.add("/cut.zip", body[: len(body) * 2 // 3])
    with pytest.raises(DownloadError, match="damaged or incomplete"):
        get_samples(tmp_path / "pets", url=url, **FAST)
    assert _leftovers(tmp_path) == []  # nothing unpacked, the bad archive deleted (the next try downloads again)


def test_damaged_entry_fails_its_crc(server, tmp_path):
    body = bytearray(sample_zip(compression=zipfile.ZIP_STORED))
    i = body.index(b"\xff\xd8\xff")  # the first JPEG's bytes, stored as they are
    body[i + 200] ^= 0xFF
    url = server.add("/flipped.zip", bytes(body))
    with pytest.raises(DownloadError, match="CRC"):
        get_samples(tmp_path / "pets", url=url, **FAST)
    assert _leftovers(tmp_path) == []


def test_wrong_checksum_is_refused(server, tmp_path):
    url = server.add("/s.zip", sample_zip())
    with pytest.raises(DownloadError, match="SHA-256"):
        get_samples(tmp_path / "pets", url=url, sha256="0" * 64, **FAST)
    assert _leftovers(tmp_path) == []


def test_known_size_mismatch_is_refused(server, tmp_path):
    body = sample_zip()
    url = server.add("/s.zip", body)
    with pytest.raises(DownloadError, match="not the expected"):
        download.download(url, tmp_path / "s.zip", size=len(body) + 1, **FAST)
    assert _leftovers(tmp_path) == []
    assert download.download(url, tmp_path / "s.zip", size=len(body), **FAST).read_bytes() == body


def test_parent_entries_are_refused_and_nothing_is_written(server, tmp_path):
    url = server.add("/evil.zip", sample_zip(extra=[("../evil.txt", b"gotcha"),
                                                    ("cats_and_dogs_filtered/../../evil2.txt", b"x")]))
    (tmp_path / "inner").mkdir()
    with pytest.raises(DownloadError, match="unsafe"):
        get_samples(tmp_path / "inner" / "pets", url=url, **FAST)
    assert not list(tmp_path.rglob("evil*.txt"))
    assert _leftovers(tmp_path / "inner") == []


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/b/../../../x", "/etc/passwd", "C:\\x", "c:x",
                                  "a\\..\\..\\x", "bad\x01name"])
def test_unsafe_names(name):
    with pytest.raises(DownloadError, match="unsafe"):
        safe_parts(name)


def test_safe_names():
    assert safe_parts("a/./b//c.jpg") == ("a", "b", "c.jpg")
    assert safe_parts("a\\b.jpg") == ("a", "b.jpg")
    assert safe_parts("__MACOSX/a/._b.jpg") is None and safe_parts("./") is None


def test_links_are_never_created(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("d/photo.jpg", b"not really")
        link = zipfile.ZipInfo("d/out")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "../../../../etc/passwd")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    res = extract_zip(tmp_path / "a.zip", tmp_path / "x")
    assert res.skipped_links == 1 and res.files == 1
    assert not (tmp_path / "x" / "d" / "out").exists() and not (tmp_path / "x" / "d" / "out").is_symlink()


def test_limits_against_zip_bombs(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * 2_000_000)  # ~2 kB compressed
        for i in range(5):
            zf.writestr(f"f{i}.txt", b"x")
    (tmp_path / "b.zip").write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="would unpack to 2.0 MB, more than the 1.0 MB allowed"):
        extract_zip(tmp_path / "b.zip", tmp_path / "out", max_bytes=1_000_000)
    with pytest.raises(DownloadError, match="6 files"):
        extract_zip(tmp_path / "b.zip", tmp_path / "out", max_files=5)
    assert _leftovers(tmp_path) == ["b.zip"]
    assert extract_zip(tmp_path / "b.zip", tmp_path / "out", max_files=6, max_bytes=3_000_000).files == 6


def test_a_lying_header_is_caught_while_unpacking(tmp_path):
    """An entry whose header claims fewer bytes than its data holds: stopped at the claimed size and
    its CRC fails, so the declared total is a real bound."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.bin", b"A" * 1000)
    data = bytearray(buf.getvalue())
    # file_size in the central directory and the local header: 1000 -> 10
    for off in [i for i in range(len(data) - 4) if data[i:i + 4] == (1000).to_bytes(4, "little")]:
        data[off:off + 4] = (10).to_bytes(4, "little")
    (tmp_path / "l.zip").write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="damaged"):
        extract_zip(tmp_path / "l.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    body = _big_zip()
    half = len(body) // 2
    url = server.add("/big.zip", body, drop_after=half)
    res = get_samples(tmp_path / "pets", url=url, **FAST)
    route = server.routes["/big.zip"]
    assert route.requests == ["", f"bytes={half}-"]
    assert (res.folder / "noise.bin").stat().st_size == 400_000


def test_server_without_ranges_starts_over(server, tmp_path):
    body = _big_zip()
    url = server.add("/big.zip", body, drop_after=len(body) // 2, ranges=False)
    out = download.download(url, tmp_path / "big.zip", **FAST)
    assert out.read_bytes() == body


def test_cancel_keeps_the_part_and_the_next_try_continues(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "PROGRESS_INTERVAL", 0.0)  # every chunk reported
    body = _big_zip()
    url = server.add("/big.zip", body)
    cancel = threading.Event()

    def progress(p):
        if p.stage == "download" and p.done >= 100_000:
            cancel.set()

    with pytest.raises(Cancelled):
        get_samples(tmp_path / "pets", url=url, progress=progress, cancel=cancel, **FAST)
    parts = list(tmp_path.glob("*.part"))
    assert len(parts) == 1 and 100_000 <= parts[0].stat().st_size < len(body)
    have = parts[0].stat().st_size
    get_samples(tmp_path / "pets", url=url, **FAST)
    assert server.routes["/big.zip"].requests == ["", f"bytes={have}-"]
    assert _leftovers(tmp_path) == ["pets"]


def test_cancel_while_unpacking_keeps_the_archive(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "PROGRESS_INTERVAL", 0.0)
    url = server.add("/s.zip", sample_zip())
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        get_samples(tmp_path / "pets", url=url, cancel=cancel, **FAST,
                    progress=lambda p: p.stage == "extract" and cancel.set())
    assert _leftovers(tmp_path) == [".pets.s.zip"]  # no half-unpacked folder; the checked archive stays
    get_samples(tmp_path / "pets", url=url, **FAST)
    assert len(server.routes["/s.zip"].requests) == 1  # not downloaded again
    assert _leftovers(tmp_path) == ["pets"]


def test_offline_says_so_in_one_sentence(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/cats_and_dogs_filtered.zip"
    with pytest.raises(DownloadError) as e:
        get_samples(tmp_path / "pets", url=url, mirror_hint="use --url with a mirror", **FAST)
    msg = str(e.value)
    assert "could not reach 127.0.0.1" in msg and "online" in msg and "browser" in msg and "--url" in msg
    assert msg.count(". ") == 0 and "\n" not in msg  # one sentence
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("status, retried", [(404, False), (503, True)])
def test_server_error_says_so(server, tmp_path, status, retried):
    url = server.add("/s.zip", b"", status=status)
    with pytest.raises(DownloadError) as e:
        get_samples(tmp_path / "pets", url=url, **FAST)
    assert (str(status) in str(e.value)) and "browser" in str(e.value)
    assert len(server.routes["/s.zip"].requests) == (4 if retried else 1)


def test_destination_must_be_new_or_empty(server, tmp_path):
    url = server.add("/s.zip", sample_zip())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    with pytest.raises(DownloadError, match="not empty"):
        get_samples(tmp_path / "full", url=url, **FAST)
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert (get_samples(tmp_path / "empty", url=url, **FAST).folder / "train").is_dir()
    with pytest.raises(DownloadError, match="web address"):
        get_samples(tmp_path / "x", url="file:///etc/passwd")


def test_app_data_folder_and_loose_files_above_the_photos(server, tmp_path):
    """The GUI's default destination is samples/ in the app data folder; a licence file beside the
    photo folder (as in PetImages) is kept inside the dataset folder."""
    url = server.add("/kagglecatsanddogs_5340.zip",
                     sample_zip(top="PetImages", extra=[("LICENSE.txt", b"licence")]))
    assert samples.installed("large") is None
    res = get_samples(set_key="large", url=url, **FAST)
    assert res.folder == samples.samples_dir() / "PetImages" == samples.installed("large")
    assert (res.folder / "LICENSE.txt").read_bytes() == b"licence"
    assert _leftovers(samples.samples_dir()) == ["PetImages"]


def test_sample_sets_and_progress_text():
    small = samples.SAMPLE_SETS["small"]
    assert small.url == "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
    assert small.size == 68_606_236 and small.sha256 is None
    assert all(s.sha256 is None for s in samples.SAMPLE_SETS.values())  # none is published: never invented
    p = download.Progress("download", 12_300_000, 68_606_236, 4_100_000, 13.4)
    assert p.text() == "Downloading 12.3 MB of 68.6 MB · 4.1 MB/s · about 13 s left"
    assert download.Progress("extract", 500, None).text() == "Unpacking 500 bytes"
    assert duration_text(125) == "2 min 05 s"


@pytest.mark.parametrize("val", ["val", "valid", "validation", "Validation"])
def test_split_layout_recognises_validation_folders(tmp_path, val):
    (tmp_path / "train").mkdir()
    (tmp_path / val).mkdir()
    assert split_layout(tmp_path) == (tmp_path / "train", tmp_path / val)


def test_cli_get_samples(server, tmp_path, capsys):
    from catdog_gui.cli import main

    url = server.add("/cats_and_dogs_filtered.zip", sample_zip())
    assert main(["get-samples", str(tmp_path / "pets"), "--url", url]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "pets") in out and "catdog train" in out and "18 photos" in out
    assert (tmp_path / "pets" / "validation" / "dogs").is_dir()
    # an error: one line, exit 2
    assert main(["get-samples", str(tmp_path / "pets"), "--url", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0]
