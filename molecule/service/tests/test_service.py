"""What the service role leaves on an app host: the unit enabled and running as the service user,
the 0600 env file, the app listening on 8080. Values mirror molecule/shared/vars/hello.yml."""

from __future__ import annotations

testinfra_hosts = ["app"]

USER = "hello"
ENV_FILE = "/etc/rollwright/hello.env"
UNIT_FILE = "/etc/systemd/system/hello.service"


def test_unit_is_enabled_and_running(host):
    service = host.service("hello")
    assert service.is_enabled
    assert service.is_running


def test_unit_file(host):
    unit = host.file(UNIT_FILE)
    assert (unit.user, unit.group, unit.mode) == ("root", "root", 0o644)
    text = unit.content_string
    assert f"User={USER}\n" in text
    assert "WorkingDirectory=/srv/hello/current\n" in text
    assert "EnvironmentFile=/etc/rollwright/hello.env\n" in text
    assert "ExecStart=/usr/bin/python3 app.py --port 8080\n" in text


def test_env_file_is_private_to_the_service_user(host):
    env = host.file(ENV_FILE)
    assert env.is_file
    assert (env.user, env.group, env.mode) == (USER, USER, 0o600)
    # It holds the database password: assert on derived values only, so a failure never prints it.
    text = env.content_string
    names = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert names == ["DATABASE_URL", "OTEL_RESOURCE_ATTRIBUTES", "STARTUP_DELAY_S", "ROLLWRIGHT_VERSION",
                     "ROLLWRIGHT_RELEASE", "OTEL_RESOURCE_ATTRIBUTES"]
    version_lines = text.split("# rollwright: the deployed version (a change here alone restarts nothing)\n")[1]
    assert version_lines == ('ROLLWRIGHT_VERSION="1.0.0"\nROLLWRIGHT_RELEASE="/srv/hello/releases/1.0.0"\n'
                             'OTEL_RESOURCE_ATTRIBUTES="team=web,service.version=1.0.0"\n')
    url_is_the_lab_database = 'DATABASE_URL="postgresql://app:' in text and '@db1:5432/app"' in text
    assert url_is_the_lab_database
    templates_left = "{{" in text  # the lab's database_url is a template that the role must render
    assert not templates_left
    startup_delay_is_set = 'STARTUP_DELAY_S="1"' in text.splitlines()
    assert startup_delay_is_set


def test_app_runs_as_the_service_user_from_current(host):
    pid = host.check_output("systemctl show hello --property MainPID --value")
    assert pid.isdigit() and int(pid) > 0
    assert host.check_output(f"ps -o user= -p {pid}") == USER
    assert host.check_output(f"readlink /proc/{pid}/cwd") == "/srv/hello/releases/1.0.0"


def test_listening_on_8080(host):
    assert host.socket("tcp://0.0.0.0:8080").is_listening


def test_a_process_with_two_instances_runs_from_one_template_unit(host):
    unit = host.file("/etc/systemd/system/hello-sleeper@.service")
    assert (unit.user, unit.group, unit.mode) == ("root", "root", 0o644)
    assert "Environment=ROLLWRIGHT_INSTANCE=%i\n" in unit.content_string
    assert "EnvironmentFile=/etc/rollwright/hello-sleeper.env\n" in unit.content_string
    for instance in ("hello-sleeper@1", "hello-sleeper@2"):
        assert host.service(instance).is_enabled and host.service(instance).is_running
    env = host.file("/etc/rollwright/hello-sleeper.env")
    assert (env.user, env.mode) == (USER, 0o600) and 'ROLE="worker"' in env.content_string
