"""Java and Maven for the embedded Neo4j: the launcher's classpath and its compiled class, cached.

The launcher (neo4j_launcher/RagstoreNeo4j.java + pom.xml, shipped as package data) is compiled once
per launcher version into a cache folder; Maven resolves Neo4j Community's jars into ~/.m2 (about
145 MB, the first time only) and writes the classpath beside the class. Each missing tool or
unresolvable artifact is one line that says what is missing and how to get it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ragstore_cli.errors import OperationFailed, UsageError

LAUNCHER_DIR = Path(__file__).resolve().parent / "neo4j_launcher"
MAIN_CLASS = "RagstoreNeo4j"
MIN_JAVA = 17
RESOLVE_TIMEOUT = 900.0  # the first resolution downloads ~145 MB from Maven Central


@dataclass(frozen=True)
class Runtime:
    """What starting the launcher takes: a java binary and the classpath (launcher class first)."""

    java: str
    classpath: str
    neo4j_version: str


def cache_root() -> Path:
    """RAGSTORE_CACHE_DIR, else $XDG_CACHE_HOME/ragstore, else ~/.cache/ragstore."""
    explicit = os.environ.get("RAGSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ragstore"


def neo4j_version() -> str:
    """The Neo4j version to run: RAGSTORE_NEO4J_VERSION, else the one the launcher's pom.xml pins."""
    pinned = re.search(r"<neo4j.version>([^<]+)</neo4j.version>", (LAUNCHER_DIR / "pom.xml").read_text())
    return os.environ.get("RAGSTORE_NEO4J_VERSION") or (pinned.group(1) if pinned else "5.26.30")


def _tool(name: str, env_name: str, hint: str) -> str:
    explicit = os.environ.get(env_name)
    java_home = os.environ.get("JAVA_HOME")
    candidates = [explicit] if explicit else []
    if java_home and name in ("java", "javac"):
        candidates.append(str(Path(java_home) / "bin" / name))
    candidates.append(shutil.which(name))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    raise UsageError(f"the embedded Neo4j needs `{name}` ({hint}), which is not on PATH; {_install_hint(name)}")


def _install_hint(name: str) -> str:
    return {
        "java": "install Java 17 or 21 (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME",
        "javac": "install a JDK, not only a JRE (e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME",
        "mvn": "install Maven (e.g. apt-get install maven) or set RAGSTORE_MVN",
    }[name]


def java_major(java: str) -> int:
    """The major version `java -version` reports (17 for "17.0.15", 8 for "1.8.0_392")."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed(f"cannot run {java} -version: {exc}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        raise OperationFailed(f"cannot tell the version of {java}: {(out.stderr or out.stdout).strip()[:120]}")
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def _launcher_key(version: str, java: str) -> str:
    digest = hashlib.sha256()
    for name in ("pom.xml", f"{MAIN_CLASS}.java"):
        digest.update((LAUNCHER_DIR / name).read_bytes())
    digest.update(f"{version}\0{Path(java).resolve()}".encode())
    return digest.hexdigest()[:16]


def _classpath_ok(path: Path) -> bool:
    try:
        entries = path.read_text().strip().split(os.pathsep)
    except OSError:
        return False
    return bool(entries) and all(Path(entry).is_file() for entry in entries)


def _maven_error(output: str) -> str:
    """The line of Maven's output that says what failed (an artifact, a repository, the network)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in output.splitlines()]
    errors = [line.removeprefix("[ERROR]").split(" -> [Help")[0].strip() for line in lines if line.startswith("[ERROR]")]
    for line in errors:
        if "Could not" in line:  # "Failed to execute goal …: Could not resolve …: Could not find artifact …"
            return line[line.rindex("Could not"):][:300]
    return (errors or [line for line in lines if line] or ["no output"])[0][:300]


def _resolve(folder: Path, version: str, timeout: float) -> None:
    mvn = _tool("mvn", "RAGSTORE_MVN", "Maven, to fetch Neo4j Community's jars")
    shutil.copyfile(LAUNCHER_DIR / "pom.xml", folder / "pom.xml")
    cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(folder / "pom.xml"), "dependency:build-classpath",
           f"-Dneo4j.version={version}", f"-Dmdep.outputFile={folder / 'classpath.tmp'}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"Maven did not resolve Neo4j {version} within {timeout:g} s "
                              "(is Maven Central reachable? set RAGSTORE_NEO4J_RESOLVE_TIMEOUT to wait longer)") from None
    if out.returncode != 0 or not _classpath_ok(folder / "classpath.tmp"):
        raise OperationFailed(f"Maven could not resolve Neo4j {version} (org.neo4j:neo4j): "
                              f"{_maven_error(out.stdout + out.stderr)}")
    os.replace(folder / "classpath.tmp", folder / "classpath.txt")


def _compile(folder: Path, java: str) -> None:
    sibling = Path(java).resolve().parent / "javac"  # the JDK of the java that will run the class
    javac = str(sibling) if sibling.is_file() and "RAGSTORE_JAVAC" not in os.environ else \
        _tool("javac", "RAGSTORE_JAVAC", "a JDK, to compile ragstore's small launcher")
    classes = folder / "classes.tmp"
    shutil.rmtree(classes, ignore_errors=True)
    cmd = [javac, "-nowarn", "--release", str(MIN_JAVA), "-d", str(classes),
           "-cp", (folder / "classpath.txt").read_text().strip(), str(LAUNCHER_DIR / f"{MAIN_CLASS}.java")]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise OperationFailed("javac did not compile the Neo4j launcher within 300 s") from None
    if out.returncode != 0:
        first = next((line for line in (out.stderr + out.stdout).splitlines() if line.strip()), "no output")
        raise OperationFailed(f"javac could not compile the Neo4j launcher: {first[:300]}")
    shutil.rmtree(folder / "classes", ignore_errors=True)
    os.replace(classes, folder / "classes")


def prepare(*, timeout: float | None = None) -> Runtime:
    """Java checked, jars resolved and the launcher compiled (each only when not cached yet).

    Serialised by a lock file, so two processes starting servers at once resolve once.
    """
    java = _tool("java", "RAGSTORE_JAVA", f"Java {MIN_JAVA} or 21, to run Neo4j Community")
    major = java_major(java)
    if major < MIN_JAVA:
        raise UsageError(f"the embedded Neo4j needs Java {MIN_JAVA} or 21, {java} is Java {major}; "
                         f"{_install_hint('java')}")
    version = neo4j_version()
    timeout = timeout or float(os.environ.get("RAGSTORE_NEO4J_RESOLVE_TIMEOUT", RESOLVE_TIMEOUT))
    folder = cache_root() / "neo4j" / _launcher_key(version, java)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _classpath_ok(folder / "classpath.txt"):
            _resolve(folder, version, timeout)
        if not (folder / "classes" / f"{MAIN_CLASS}.class").is_file():
            _compile(folder, java)
    classpath = os.pathsep.join([str(folder / "classes"), (folder / "classpath.txt").read_text().strip()])
    return Runtime(java, classpath, version)


if __name__ == "__main__":  # `python -m ragstore_cli.embedded.neo4j_runtime`: fetch and compile ahead (CI, images)
    import sys
    import time

    from ragstore_cli.errors import RagstoreError

    began = time.monotonic()
    try:
        ready = prepare()
    except RagstoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    print(f"Neo4j {ready.neo4j_version} ready to start with {ready.java} ({time.monotonic() - began:.1f} s; "
          f"cache {cache_root() / 'neo4j'})")
