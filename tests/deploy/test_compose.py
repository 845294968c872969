"""The deployment files, checked without Docker: docker-compose.yml, .env.example and the Dockerfile.

docker-compose.yml is validated against the Compose Specification's JSON schema (compose-spec.json beside this
file, from github.com/compose-spec/compose-spec, Apache-2.0: LICENSE.compose-spec), and against nnbot itself: every
command a service runs is a `bot` command the CLI has, with options it takes, and every variable named is a setting.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.main
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).parent / "compose-spec.json"

POSTGRES_SERVICE = "postgres"
BROKER_SERVICE = "redis"
TRAINER = "trainer"
TRAIN_PROFILE = "train"
WORKER, GPU_WORKER, GPU_PROFILE = "worker", "gpu-worker", "gpu"
# What the official postgres image reads (its documentation's "Environment Variables"); nnbot reads none of them.
POSTGRES_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_INITDB_ARGS",
                      "POSTGRES_INITDB_WALDIR", "POSTGRES_HOST_AUTH_METHOD", "PGDATA"}
# Variables only docker-compose.yml reads (for ${...}), each documented in .env.example; not nnbot settings.
# NNBOT_REVIEW_BIND: where the review page is published, address:port on the host; NNBOT_WORKER_QUEUES: the queues
# the CPU worker takes (refill alone when a GPU worker trains)
DEPLOYMENT_VARIABLES = {"NNBOT_REVIEW_BIND", "NNBOT_WORKER_QUEUES"}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")  # $${X} is not one
ENV_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=(.*)$")  # NAME=value, or #NAME=value for one left at its default


# ---- reading the files


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def nnbot_services() -> dict[str, dict[str, Any]]:
    """Every service but the database and the broker: the ones that run nnbot."""
    return {name: service for name, service in services().items() if name not in (POSTGRES_SERVICE, BROKER_SERVICE)}


def interpolate(value: str) -> str:
    """`value` as compose would fill it in with nothing set: defaults for ${X:-default}, "SET" for required ones."""
    def fill(match: re.Match[str]) -> str:
        kind, default = match[2], match[3]
        if kind in (":-", "-"):
            return default
        return "SET" if kind in (":?", "?") else ""

    return INTERPOLATION.sub(fill, value).replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, as a mapping whichever form the file uses (raw: ${...} not filled in)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def env_example() -> list[tuple[int, str, str]]:
    """(line index, name, value) of every variable .env.example names, set or commented out."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    return [(i, m[1], m[2]) for i, line in enumerate(lines) if (m := ENV_LINE.match(line))]


def settings_variables() -> set[str]:
    from bot.config import Settings

    return {name.upper() for name in Settings.model_fields}


def command_words(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


# ---- the bot CLI, as the typer app has registered it
# Typer builds click-style command objects (its own copy of click in recent versions), so they are used by what
# they do: a group has list_commands/get_command, a parameter says whether it is an option.


def cli() -> Any:
    """The `bot` command tree: whatever commands and groups the modules have registered on `bot.cli.app` so far."""
    import bot.cli

    return typer.main.get_command(bot.cli.app)


def context(command: Any) -> Any:
    return command.context_class(command)


def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def accepted_options(command: Any) -> dict[str, Any]:
    """Every option name the command takes (--help included), with the option it belongs to."""
    options: dict[str, Any] = {}
    for param in command.get_params(context(command)):
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                options[name] = param
    return options


def command_problem(words: list[str]) -> str | None:
    """None if `words` is a command line the `bot` CLI accepts as far as names go, else what is wrong with it."""
    if not words or words[0] != "bot":
        return f"{shlex.join(words)!r} does not run `bot`"
    command = cli()
    path = ["bot"]
    rest = words[1:]
    while rest:
        word, rest = rest[0], rest[1:]
        if word.startswith("-") and word != "-":
            name = word.partition("=")[0]
            option = accepted_options(command).get(name)
            if option is None:
                known = ", ".join(sorted(accepted_options(command)))
                return f"`{' '.join(path)}` has no option {name} (it takes {known})"
            if not option.is_flag and not option.count and "=" not in word:
                rest = rest[option.nargs:]  # the option's value
        elif is_group(command):
            sub = command.get_command(context(command), word)
            if sub is None:
                known = ", ".join(sorted(command.list_commands(context(command))))
                return f"`{' '.join(path)}` has no command {word!r} (it has: {known})"
            command = sub
            path.append(word)
        # else: an argument of the command; how many it takes is for the CLI to say at run time
    if is_group(command):
        return f"`{' '.join(path)}` needs a subcommand"
    return None


# ---- docker-compose.yml


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = declared_draft(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema, format_checker=validator_class.FORMAT_CHECKER).iter_errors(compose()),
                    key=lambda e: list(e.absolute_path))
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors] == []


def declared_draft(schema: dict[str, Any]) -> type[Any]:
    """The validator for the draft the schema's `$schema` names; http/https and a trailing # do not matter."""
    def normal(uri: str) -> str:
        return re.sub(r"^https?://", "", uri).rstrip("#").rstrip("/")

    drafts = [jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator,
              jsonschema.Draft201909Validator, jsonschema.Draft202012Validator]
    for draft in drafts:
        meta = draft.META_SCHEMA
        if normal(meta.get("$id") or meta.get("id", "")) == normal(schema["$schema"]):
            return draft
    raise AssertionError(f"compose-spec.json declares {schema['$schema']!r}, which no jsonschema draft is")


@pytest.mark.parametrize("name", sorted(nnbot_services()))
def test_each_service_runs_a_bot_command_the_cli_has(name: str) -> None:
    service = nnbot_services()[name]
    assert "command" in service, f"service {name!r} names no command"
    problem = command_problem(command_words(service["command"]))
    assert problem is None, f"service {name!r} runs {command_words(service['command'])}: {problem}"


def test_the_image_default_command_is_a_bot_command_the_cli_has() -> None:
    cmd = [args for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert cmd, "the Dockerfile has no CMD"
    words = json.loads(cmd[-1])  # the exec form: a JSON array
    assert command_problem(words) is None, command_problem(words)


def test_the_command_check_catches_unknown_commands_and_options() -> None:
    assert command_problem(["bot", "run", "--config", "x.toml", "--once"]) is None
    assert command_problem(["bot", "--config", "x.toml", "model", "list", "--json"]) is None
    assert command_problem(["bot", "train", "hn", "--model=hn", "--max-minutes", "5"]) is None
    assert "has no command 'fly'" in (command_problem(["bot", "fly"]) or "")
    assert "has no option --fast" in (command_problem(["bot", "run", "--fast"]) or "")
    assert "needs a subcommand" in (command_problem(["bot", "model"]) or "")
    assert "does not run `bot`" in (command_problem(["python", "-m", "bot"]) or "")


def test_the_scheduler_and_the_review_page_run_what_their_names_say() -> None:
    assert command_words(services()["bot"]["command"])[:2] == ["bot", "run"]
    assert command_words(services()["review"]["command"]) == ["bot", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert command_words(services()[TRAINER]["command"])[:2] == ["bot", "train"]


def test_every_variable_compose_names_is_a_setting_or_a_postgres_or_deployment_variable() -> None:
    known = settings_variables() | POSTGRES_VARIABLES | DEPLOYMENT_VARIABLES
    named = {match[0] for match in INTERPOLATION.findall(COMPOSE_FILE.read_text(encoding="utf-8"))}
    for service in services().values():
        named |= set(environment(service))
    assert sorted(named - known) == []


def test_every_service_but_the_database_reads_dotenv() -> None:
    for name, service in nnbot_services().items():
        env_files = service.get("env_file")
        env_files = [env_files] if isinstance(env_files, (str, dict)) else env_files or []
        paths = [f if isinstance(f, str) else f["path"] for f in env_files]
        assert ".env" in paths, f"service {name!r} does not read .env"


def test_services_wait_for_a_healthy_database() -> None:
    healthcheck = services()[POSTGRES_SERVICE]["healthcheck"]
    test = healthcheck["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    for name, service in nnbot_services().items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"service {name!r}: depends_on needs the long form to wait for health"
        assert depends.get(POSTGRES_SERVICE, {}).get("condition") == "service_healthy", name


def test_services_use_the_postgres_service_and_share_bot_home_in_a_named_volume() -> None:
    named_volumes = set(compose().get("volumes") or {})
    homes = set()
    for name, service in nnbot_services().items():
        env = environment(service)
        url = interpolate(env.get("BOT_DATABASE_URL", ""))
        assert re.match(rf"^postgresql\+psycopg://[^:@/]+:[^@/]+@{POSTGRES_SERVICE}:5432/\w+$", url), (name, url)
        home = env.get("BOT_HOME")
        assert home, f"service {name!r} sets no BOT_HOME"
        mounts = [(m.partition(":")[0], m.split(":")[1]) if isinstance(m, str) else (m.get("source"), m["target"])
                  for m in service.get("volumes", [])]
        assert any(source in named_volumes and target == home for source, target in mounts), (name, mounts)
        homes.add((home, next(source for source, target in mounts if target == home)))
    assert len(homes) == 1, f"the services keep BOT_HOME in different places: {sorted(homes)}"


def test_the_review_page_needs_its_password_and_is_published_on_loopback_by_default() -> None:
    review = services()["review"]
    password = environment(review)["BOT_REVIEW_PASSWORD"]
    assert re.fullmatch(r"\$\{BOT_REVIEW_PASSWORD:\?[^}]+\}", password), password
    ports = [interpolate(p) if isinstance(p, str) else f"{p.get('host_ip', '')}:{p['published']}:{p['target']}"
             for p in review["ports"]]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), ports
    assert [p.rsplit(":", 1)[1] for p in ports] == ["8000"]  # the port `bot serve --port` listens on


def test_services_restart_and_the_trainer_does_not() -> None:
    for name, service in nnbot_services().items():
        expected = "no" if name == TRAINER else "unless-stopped"
        assert service.get("restart") == expected, name
    assert services()[POSTGRES_SERVICE].get("restart") == "unless-stopped"
    assert services()[BROKER_SERVICE].get("restart") == "unless-stopped"


def test_the_scheduler_and_the_workers_reach_a_healthy_redis_broker() -> None:
    broker = services()[BROKER_SERVICE]
    assert broker["image"].startswith("redis:") and "ports" not in broker  # only this project's network reaches it
    assert "redis-cli" in " ".join(broker["healthcheck"]["test"])
    assert "--appendonly" in command_words(broker["command"])  # tasks waiting in it survive its restart
    for name in ("bot", WORKER, GPU_WORKER):
        service = services()[name]
        assert interpolate(environment(service)["BOT_BROKER_URL"]) == f"redis://{BROKER_SERVICE}:6379/0", name
        assert service["depends_on"][BROKER_SERVICE]["condition"] == "service_healthy", name


def test_workers_run_bot_worker_and_the_gpu_worker_takes_the_trainings_under_its_profile() -> None:
    cpu, gpu = services()[WORKER], services()[GPU_WORKER]
    assert [interpolate(word) for word in command_words(cpu["command"])] == ["bot", "worker", "--queues",
                                                                            "train,refill"]
    assert command_words(gpu["command"]) == ["bot", "worker", "--queues", "train"]
    assert "profiles" not in cpu and gpu["profiles"] == [GPU_PROFILE]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    assert gpu["build"]["args"]["TENSORFLOW"] == services()[TRAINER]["build"]["args"]["TENSORFLOW"]


def test_the_trainer_reserves_an_nvidia_gpu_under_the_train_profile() -> None:  # the GPU worker: above
    trainer = services()[TRAINER]
    assert trainer.get("profiles") == [TRAIN_PROFILE]
    devices = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) and d.get("count") in (1, "all")
               for d in devices), devices
    for name, service in nnbot_services().items():
        if name != TRAINER:
            assert TRAIN_PROFILE not in service.get("profiles", []), f"{name!r} would start only with training"


def test_build_args_are_arguments_the_dockerfile_declares() -> None:
    declared = {args.partition("=")[0] for keyword, args in dockerfile_instructions() if keyword == "ARG"}
    for name, service in nnbot_services().items():
        build = service.get("build") or {}
        build_args = build.get("args", {}) if isinstance(build, dict) else {}
        assert set(build_args) <= declared, (name, sorted(set(build_args) - declared))


# ---- .env.example


def test_env_example_names_every_setting() -> None:
    named = {name for _, name, _ in env_example()}
    assert sorted(settings_variables() - named) == []


def test_env_example_names_only_settings_and_postgres_or_deployment_variables() -> None:
    known = settings_variables() | POSTGRES_VARIABLES | DEPLOYMENT_VARIABLES
    assert sorted({name for _, name, _ in env_example()} - known) == []


def test_env_example_explains_every_variable_on_the_line_above() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, name, _ in env_example():
        above = lines[index - 1] if index else ""
        assert above.startswith("# ") and not ENV_LINE.match(above), f"{name} has no comment line above it"


def test_env_example_holds_no_secrets() -> None:
    from pydantic import SecretStr

    from bot.config import Settings

    secrets = {name.upper() for name, field in Settings.model_fields.items() if SecretStr in _types(field.annotation)}
    secrets |= {"POSTGRES_PASSWORD"}
    values = {name: value for _, name, value in env_example()}
    assert secrets <= set(values)
    assert {name: values[name] for name in secrets if values[name]} == {}


def _types(annotation: Any) -> set[Any]:
    return {annotation, *getattr(annotation, "__args__", ())}


def test_dotenv_deployment_variables_are_documented() -> None:
    named = {name for _, name, _ in env_example()}
    assert DEPLOYMENT_VARIABLES <= named


# ---- Dockerfile


def test_dockerfile_runs_as_a_user_who_is_not_root() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "the Dockerfile has no USER: the container would run as root"
    assert users[-1].partition(":")[0] not in ("root", "0")


def test_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    steps = dockerfile_instructions()
    copies = [(i, args.split()) for i, (keyword, args) in enumerate(steps) if keyword in ("COPY", "ADD")]
    pyproject = next(i for i, words in copies if "pyproject.toml" in words)
    source = [i for i, words in copies
              if any(w.rstrip("/") in (".", "bot", "models", "scrapers") for w in words[:-1] if not w.startswith("--"))]
    assert source, "the Dockerfile copies no source"
    first_source = min(source)
    installs = [i for i, (keyword, args) in enumerate(steps) if keyword == "RUN" and "pip install" in args]
    assert any(pyproject < i < first_source for i in installs), "no dependency install between pyproject and source"
    assert any(i > first_source and "--no-deps" in steps[i][1] for i in installs), "the project is not installed --no-deps"


def test_dockerfile_base_and_bot_home_match_the_compose_file() -> None:
    steps = dockerfile_instructions()
    assert next(args for keyword, args in steps if keyword == "FROM").startswith("python:3.11-slim")
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    homes = {environment(service)["BOT_HOME"] for service in nnbot_services().values()}
    assert re.search(r"\bBOT_HOME=(\S+)", env)[1] in homes  # type: ignore[index]
