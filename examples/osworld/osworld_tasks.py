"""The benchmark's task set: desktop chores across files, terminal, browsing and settings.

`bulk_rename_screenshots` fails by design: the agent renames files one action at a time and runs
out of its step budget, the most common way real OSWorld agents fail long-horizon tasks.
"""

from __future__ import annotations

from pathlib import Path

from osworld_harness import DesktopEnv, Task


def _seed_tree(home: Path) -> None:
    (home / "project" / "src").mkdir(parents=True)
    (home / "project" / "src" / "main.py").write_text("print('hi')\n# TODO: handle errors\n")
    (home / "project" / "src" / "util.py").write_text("def add(a, b):\n    return a + b\n")
    (home / "project" / "README.md").write_text("# Project\nTODO: write docs\n")
    (home / "project" / "notes.txt").write_text("nothing to do here\n")


def _seed_downloads(home: Path) -> None:
    (home / "Downloads").mkdir()
    for name in ("invoice.pdf", "paper.pdf", "photo.png"):
        (home / "Downloads" / name).write_bytes(name.encode())


def _seed_pages(home: Path) -> None:
    site = home / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<html><head><title>Team Wiki</title></head><body>"
        "<h1>Welcome</h1><a href='oncall.html'>On-call rota</a></body></html>"
    )
    (site / "oncall.html").write_text(
        "<html><head><title>On-call</title></head><body><h1>This week: Ada</h1></body></html>"
    )


def _seed_words(home: Path) -> None:
    (home / "essay.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 7)
    (home / "fruits.txt").write_text("apple\npear\napple\nfig\npear\napple\n")


def _seed_screenshots(home: Path) -> None:
    (home / "Pictures").mkdir()
    for index in range(12):
        (home / "Pictures" / f"Screenshot {index:02d}.png").write_bytes(b"\x89PNG")


def _agent_create_report(env: DesktopEnv) -> None:
    env.write_file("notes/report.txt", "Quarterly report\nRevenue: 42\n")


def _agent_sort_downloads(env: DesktopEnv) -> None:
    for name in env.list_dir("Downloads"):
        if name.endswith(".pdf"):
            env.move(f"Downloads/{name}", f"Documents/{name}")


def _agent_find_todos(env: DesktopEnv) -> None:
    hits = env.search("project", "TODO")
    env.write_file("todo_files.txt", "\n".join(hits) + "\n")


def _agent_word_count(env: DesktopEnv) -> None:
    count = env.terminal("wc -w < essay.txt").strip()
    env.write_file("word_count.txt", count)


def _agent_fruit_histogram(env: DesktopEnv) -> None:
    out = env.terminal("sort fruits.txt | uniq -c | sort -rn | head -n 1")
    env.write_file("top_fruit.txt", out.split()[1])


def _agent_read_title(env: DesktopEnv) -> None:
    env.write_file("title.txt", env.open_page("site/index.html").title)


def _agent_follow_link(env: DesktopEnv) -> None:
    index = env.open_page("site/index.html")
    target = env.open_page(f"site/{index.links[0]}")
    env.write_file("oncall.txt", target.headings[0].removeprefix("This week: "))


def _agent_dark_mode(env: DesktopEnv) -> None:
    env.set_setting("appearance", "theme", "dark")
    env.set_setting("appearance", "font_size", "14")


def _agent_bulk_rename(env: DesktopEnv) -> None:
    for name in env.list_dir("Pictures"):
        env.move(f"Pictures/{name}", f"Pictures/{name.replace('Screenshot ', 'shot-')}")


def _read(env: DesktopEnv, rel: str) -> str:
    path = env.home / rel
    return path.read_text() if path.exists() else ""


TASKS = [
    Task(
        "create_report", "file_operations", "Write the quarterly report to notes/report.txt", 3,
        lambda home: None, _agent_create_report,
        lambda env: _read(env, "notes/report.txt").startswith("Quarterly report"),
    ),
    Task(
        "sort_downloads", "file_operations", "Move every PDF from Downloads to Documents", 6,
        _seed_downloads, _agent_sort_downloads,
        lambda env: sorted(p.name for p in (env.home / "Documents").iterdir()) == ["invoice.pdf", "paper.pdf"]
        and sorted(p.name for p in (env.home / "Downloads").iterdir()) == ["photo.png"],
    ),
    Task(
        "find_todos", "file_operations", "List the files under project/ that contain TODO", 4,
        _seed_tree, _agent_find_todos,
        lambda env: _read(env, "todo_files.txt").split() == ["project/README.md", "project/src/main.py"],
    ),
    Task(
        "bulk_rename_screenshots", "file_operations", "Rename every screenshot to shot-NN.png", 8,
        _seed_screenshots, _agent_bulk_rename,
        lambda env: sorted(p.name for p in (env.home / "Pictures").iterdir())
        == [f"shot-{i:02d}.png" for i in range(12)],
    ),
    Task(
        "word_count", "terminal", "Count the words in essay.txt with the terminal", 3,
        _seed_words, _agent_word_count,
        lambda env: _read(env, "word_count.txt") == str(len(_read(env, "essay.txt").split())),
    ),
    Task(
        "top_fruit", "terminal", "Find the most frequent line in fruits.txt", 3,
        _seed_words, _agent_fruit_histogram,
        lambda env: _read(env, "top_fruit.txt") == "apple",
    ),
    Task(
        "read_title", "web_browsing", "Open the team wiki and note its title", 3,
        _seed_pages, _agent_read_title,
        lambda env: _read(env, "title.txt") == "Team Wiki",
    ),
    Task(
        "follow_link", "web_browsing", "Find who is on call this week via the wiki", 4,
        _seed_pages, _agent_follow_link,
        lambda env: _read(env, "oncall.txt") == "Ada",
    ),
    Task(
        "dark_mode", "system_settings", "Switch the desktop to dark mode with 14pt text", 3,
        lambda home: None, _agent_dark_mode,
        lambda env: env.get_setting("appearance", "theme") == "dark"
        and env.get_setting("appearance", "font_size") == "14",
    ),
]
