"""A small OSWorld-style harness: an agent performs desktop tasks inside a sandboxed home directory.

Every action the agent takes (create, move, list, search, run a command, open a page, change a
setting) is one *step*. A task has a step budget, as in OSWorld; an agent that needs more steps
than the budget fails the task. Each task is verified by inspecting the resulting state, never by
trusting the agent's own report.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable


class StepBudgetExceeded(RuntimeError):
    """The agent used more actions than the task allows."""


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings: list[str] = []
        self.links: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("title", "h1"):
            self._in = tag
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data.strip()
        elif self._in == "h1":
            self.headings.append(data.strip())


@dataclass
class Page:
    title: str
    headings: list[str]
    links: list[str]


class DesktopEnv:
    """A desktop confined to `home`: files, a terminal, a browser for local pages, and settings."""

    def __init__(self, home: Path, max_steps: int) -> None:
        self.home = home
        self.max_steps = max_steps
        self.steps = 0
        self.home.mkdir(parents=True, exist_ok=True)
        self.settings_file = self.home / ".config" / "desktop.ini"

    def _step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise StepBudgetExceeded(f"step budget of {self.max_steps} exceeded")

    def _path(self, rel: str) -> Path:
        path = (self.home / rel).resolve()
        if self.home.resolve() not in path.parents and path != self.home.resolve():
            raise PermissionError(f"{rel} is outside the sandbox")
        return path

    def write_file(self, rel: str, text: str) -> None:
        self._step()
        path = self._path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def read_file(self, rel: str) -> str:
        self._step()
        return self._path(rel).read_text(encoding="utf-8")

    def move(self, src: str, dst: str) -> None:
        self._step()
        target = self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(self._path(src), target)

    def list_dir(self, rel: str) -> list[str]:
        self._step()
        return sorted(p.name for p in self._path(rel).iterdir())

    def search(self, rel: str, term: str) -> list[str]:
        self._step()
        root = self._path(rel)
        hits = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and term in path.read_text(encoding="utf-8", errors="replace"):
                hits.append(str(path.relative_to(self.home)))
        return hits

    def terminal(self, command: str) -> str:
        self._step()
        done = subprocess.run(
            ["sh", "-c", command], cwd=self.home, capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    def open_page(self, rel: str) -> Page:
        self._step()
        parser = _PageParser()
        parser.feed(self._path(rel).read_text(encoding="utf-8"))
        return Page(parser.title, parser.headings, parser.links)

    def set_setting(self, section: str, key: str, value: str) -> None:
        self._step()
        config = configparser.ConfigParser()
        config.read(self.settings_file)
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, key, value)
        self.settings_file.parent.mkdir(parents=True, exist_ok=True)
        with self.settings_file.open("w", encoding="utf-8") as handle:
            config.write(handle)

    def get_setting(self, section: str, key: str) -> str | None:
        config = configparser.ConfigParser()
        config.read(self.settings_file)
        return config.get(section, key, fallback=None)


@dataclass
class Task:
    task_id: str
    category: str
    instruction: str
    max_steps: int
    setup: Callable[[Path], None]
    agent: Callable[[DesktopEnv], None]
    check: Callable[[DesktopEnv], bool]


@dataclass
class TaskResult:
    task_id: str
    category: str
    success: bool
    steps_taken: int
    execution_time: float
    error: str | None = field(default=None)


def run_task(task: Task, workdir: Path) -> TaskResult:
    """Set up the task's world, let the agent act within its step budget, then verify the state."""
    home = workdir / task.task_id
    home.mkdir(parents=True, exist_ok=True)
    task.setup(home)
    env = DesktopEnv(home, task.max_steps)
    started = time.perf_counter()
    error = None
    try:
        task.agent(env)
        success = task.check(env)
        if not success:
            error = "final state does not satisfy the task"
    except (StepBudgetExceeded, OSError, subprocess.SubprocessError) as exc:
        success = False
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    return TaskResult(task.task_id, task.category, success, env.steps, elapsed, error)


def summarize(results: list[TaskResult], memory_usage_bytes: int | None = None) -> dict:
    """The OSWorld results document: overall and per-category success, every task's details,
    and the harness's own peak memory when it was measured."""
    categories: dict[str, dict[str, int]] = {}
    for result in results:
        stats = categories.setdefault(result.category, {"total": 0, "passed": 0})
        stats["total"] += 1
        stats["passed"] += int(result.success)
    total = len(results)
    passed = sum(int(r.success) for r in results)
    doc = {
        "success_rate": passed / total if total else 0.0,
        "total_tasks": total,
        "passed_tasks": passed,
        "total_time": sum(r.execution_time for r in results),
        "category_stats": categories,
        "detailed_results": [
            {k: v for k, v in asdict(r).items() if k != "error"} for r in results
        ],
    }
    if memory_usage_bytes is not None:
        doc["memory_usage_bytes"] = memory_usage_bytes
    return doc


def write_results(results: list[TaskResult], path: Path, memory_usage_bytes: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summarize(results, memory_usage_bytes), indent=2), encoding="utf-8")
