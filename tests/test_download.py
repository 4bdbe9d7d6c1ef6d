"""Downloading released files: resume over HTTP Range, size/hash checks, atomic final file (local server only)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.core.download import Expected, download, file_digests, partial_path
from tspvideo.core.errors import TspVideoError
from tspvideo.features import released

PAYLOAD = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()


class Server:
    """A 127.0.0.1 HTTP server for one payload: honours Range, can cut the first response short."""

    def __init__(self, payload: bytes, cut_after: int | None = None, honour_range: bool = True,
                 range_shift: int = 0) -> None:
        self.payload, self.cut_after, self.honour_range = payload, cut_after, honour_range
        self.range_shift = range_shift  # answer a Range request from this many bytes later (a broken server)
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                ranged = self.headers.get("Range")
                server.ranges.append(ranged)
                start = int(ranged.split("=")[1].split("-")[0]) if ranged and server.honour_range else 0
                start += server.range_shift if start else 0
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:  # announce everything, send part of it, hang up
                    self.wfile.write(body[:server.cut_after])
                    server.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str = "file.h5") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_interrupted_download_resumes_with_range_and_is_atomic(tmp_path):
    target = tmp_path / "cache" / "file.h5"
    expected = Expected(size=len(PAYLOAD), sha256=_sha256(PAYLOAD))
    with Server(PAYLOAD, cut_after=100_000) as server:
        with pytest.raises(TspVideoError) as info:
            download(server.url(), target, expected, progress=False)
        # The offline message names the URL and where to put the file; nothing under the final name.
        assert server.url() in str(info.value) and str(target) in str(info.value)
        assert not target.exists()
        kept = partial_path(target).stat().st_size
        assert 0 < kept < len(PAYLOAD)
        assert download(server.url(), target, expected, progress=False) == target
    assert server.ranges == [None, f"bytes={kept}-"]
    assert target.read_bytes() == PAYLOAD
    assert not partial_path(target).exists()


def test_server_ignoring_range_restarts_from_the_first_byte(tmp_path):
    target = tmp_path / "file.h5"
    partial_path(target).write_bytes(b"x" * 5000)  # not even a prefix of the file
    with Server(PAYLOAD, honour_range=False) as server:
        download(server.url(), target, Expected(sha256=_sha256(PAYLOAD)), progress=False)
    assert server.ranges == ["bytes=5000-"]
    assert target.read_bytes() == PAYLOAD


def test_a_range_answer_from_elsewhere_is_not_appended(tmp_path):
    target = tmp_path / "file.h5"
    partial_path(target).write_bytes(PAYLOAD[:1000])
    with Server(PAYLOAD, range_shift=10) as server:
        with pytest.raises(TspVideoError, match="bytes 1010-"):
            download(server.url(), target, progress=False)
        assert not target.exists() and not partial_path(target).exists()
        download(server.url(), target, Expected(sha256=_sha256(PAYLOAD)), progress=False)  # the rerun starts afresh
    assert target.read_bytes() == PAYLOAD


@pytest.mark.parametrize("expected, problem", [
    (Expected(size=len(PAYLOAD) + 1), "bytes, expected"),
    (Expected(sha256="0" * 64), "SHA-256"),
    (Expected(git_blob_sha1="0" * 40), "git blob id"),
])
def test_a_file_that_fails_its_check_is_deleted_not_kept(tmp_path, expected, problem):
    target = tmp_path / "file.h5"
    with Server(PAYLOAD) as server, pytest.raises(TspVideoError, match=problem):
        download(server.url(), target, expected, progress=False)
    assert not target.exists() and not partial_path(target).exists()


def test_git_blob_id_matches_git(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"hello\n")
    # `printf 'hello\n' | git hash-object --stdin`
    assert file_digests(path)[1] == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_registered_gvf_file_matches_the_repository_copy(shared_data_dir):
    info = released.released_file("thumos14-gvf-r2plus1d_34-max")
    sha256, blob = file_digests(shared_data_dir / "thumos14_r2plus1d_34-max_gvf.h5")
    assert (sha256, blob) == (info.expected.sha256, info.expected.git_blob_sha1)


def test_registry_holds_the_five_released_feature_files_with_their_grids():
    features = {n: f for n, f in released.RELEASED.items() if f.kind == "features"}
    assert sorted(features) == ["activitynet-test", "activitynet-train", "activitynet-valid", "thumos14-test",
                                "thumos14-valid"]
    for name, info in features.items():
        assert info.grid == (16, 15.0, 16 if name.startswith("activitynet") else 1)
        assert info.url.startswith("https://github.com/HumamAlwassel/TSP/releases/download/")
    with pytest.raises(TspVideoError, match="did you mean"):
        released.released_file("activitynet-vaild")


def test_features_command_downloads_by_name_and_lists_cache_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    info = released.RELEASED["thumos14-test"]
    with Server(PAYLOAD, cut_after=50_000) as server:
        monkeypatch.setitem(released.RELEASED, info.name, dataclasses.replace(
            info, url=server.url(info.filename), expected=Expected(size=len(PAYLOAD), sha256=_sha256(PAYLOAD))))
        assert main(["features", "download", "thumos14-test", "--no-progress"]) == 2
        assert "Download http://127.0.0.1" in capsys.readouterr().err
        assert main(["features", "list"]) == 0
        assert "partial" in [line for line in capsys.readouterr().out.splitlines() if "thumos14-test" in line][0]
        assert main(["features", "download", "thumos14-test", "--no-progress"]) == 0
    out = capsys.readouterr().out
    cached = tmp_path / "features" / info.filename
    assert str(cached) in out and "verified by size and SHA-256" in out
    assert cached.read_bytes() == PAYLOAD
    assert main(["features", "list"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "thumos14-test" in line][0].endswith("yes")


def test_offline_download_names_the_url_and_the_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    info = released.RELEASED["activitynet-valid"]
    with Server(b"") as server:
        url = server.url(info.filename)
    # The server is closed now: the port refuses connections.
    monkeypatch.setitem(released.RELEASED, info.name, dataclasses.replace(info, url=url))
    assert main(["features", "download", "activitynet-valid", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"Download {url} yourself and put it at {tmp_path / 'features' / info.filename}" in err
    assert not Path(tmp_path / "features" / info.filename).exists()
