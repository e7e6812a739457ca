# JupyterHub configuration of the course {course_id!r}, written by `nn-course hub init`.
#
# Start it as root, from this folder (the hub's state, jupyterhub.sqlite and the cookie secret,
# is kept here):
#     cd {deploy_dir} && jupyterhub -f jupyterhub_config.py
# or `nn-course hub start {deploy_dir}`. Read docs/hub.md of the course first.
#
# Who is who (nbgrader's conventions, which its JupyterHubAuthPlugin reads back):
#   group nbgrader-{course_id}   students (and the instructors: they see the Assignment List);
#   group formgrade-{course_id}  graders: may open the formgrader service of the course;
#   service {course_id!r}        the formgrader: a Jupyter server run by the Unix account
#                                {grader!r} in the course folder {course_root!r}.
import os

c = get_config()  # noqa: F821

COURSE = {course_id!r}
GRADER = {grader!r}                      # the Unix account that owns the course folder and gradebook
INSTRUCTORS = {instructors!r}
STUDENTS = {students!r}
COURSE_ROOT = {course_root!r}            # the course repository copy: source_notebooks/, release/, course/
DEPLOY_DIR = {deploy_dir!r}              # this folder: the configs every single-user server reads
PYTHON_BIN = {python_bin!r}              # bin/ of the Python environment the servers run from

# ------------------------------------------------------------------------------ network
# The proxy (configurable-http-proxy, from npm) listens here; put TLS in front of it (nginx,
# Caddy) or set c.JupyterHub.ssl_cert / ssl_key for a real server.
c.JupyterHub.bind_url = {bind_url!r}
c.JupyterHub.hub_ip = "127.0.0.1"        # the hub's own API, for the proxy, servers and services
c.JupyterHub.hub_port = {hub_api_port!r}
c.ConfigurableHTTPProxy.api_url = {proxy_api_url!r}
c.JupyterHub.cleanup_servers = True      # stopping the hub stops every single-user server
c.JupyterHub.cleanup_proxy = True

# ------------------------------------------------------------------------------ who logs in
# PAM: the machine's Unix accounts and passwords. To use an OAuth provider instead (GitHub,
# GitLab, your university's OIDC), `pip install oauthenticator` and replace these lines by e.g.
#     c.JupyterHub.authenticator_class = "generic-oauth"   # or "github", "gitlab", ...
#     c.GenericOAuthenticator.client_id = ...; client_secret = ...; oauth_callback_url = ...
# Usernames then come from the provider; with local processes (below) every one still needs a
# Unix account of that name (c.LocalAuthenticator.create_system_users = True makes them).
c.JupyterHub.authenticator_class = {authenticator!r}
c.Authenticator.allowed_users = set(INSTRUCTORS + STUDENTS + [GRADER])
c.Authenticator.admin_users = set()      # graders need no hub admin rights

# ------------------------------------------------------------------------------ groups and roles
# Loaded at every start; add a student here (or through the hub's REST API / admin page:
# POST /hub/api/groups/nbgrader-{course_id}/users) and to allowed_users.
c.JupyterHub.load_groups = {{
    f"nbgrader-{{COURSE}}": INSTRUCTORS + STUDENTS,
    f"formgrade-{{COURSE}}": INSTRUCTORS + [GRADER],
}}
c.JupyterHub.load_roles = [
    {{  # graders reach the formgrader service, and the Course List finds it
        "name": f"formgrade-{{COURSE}}",
        "groups": [f"formgrade-{{COURSE}}"],
        "scopes": [f"access:services!service={{COURSE}}", "list:services",
                   f"read:services!service={{COURSE}}"],
    }},
    {{  # students may discover the course's service, not open it
        "name": f"nbgrader-{{COURSE}}",
        "groups": [f"nbgrader-{{COURSE}}"],
        "scopes": ["list:services", f"read:services!service={{COURSE}}"],
    }},
    {{  # a server's token may do what its owner may (nbgrader reads the owner's groups with it)
        "name": "server",
        "scopes": ["inherit"],
    }},
    {{  # the formgrader service looks up users and their groups (JupyterHubAuthPlugin)
        "name": f"formgrader-service-{{COURSE}}",
        "services": [COURSE],
        "scopes": ["list:users", "read:users", "read:users:groups", "read:groups", "list:groups"],
    }},
]

# ------------------------------------------------------------------------------ the formgrader
# A Jupyter server run by the grader account, in the course folder, as a hub service at
# /services/{course_id}/ (only the formgrade-{course_id} group gets in). Its extensions:
# Formgrader and Create Assignment (see jupyter/grader/ in this folder).
c.JupyterHub.services = [
    {{
        "name": COURSE,
        "url": {service_url!r},
        "command": [os.path.join(PYTHON_BIN, "jupyterhub-singleuser"),
                    f"--ServerApp.root_dir={{COURSE_ROOT}}"],
        "user": GRADER,
        "cwd": os.path.join(COURSE_ROOT, "course"),
        "oauth_no_confirm": True,
        "environment": {{
            "JUPYTERHUB_DEFAULT_URL": "/lab",
            "JUPYTERHUB_USER": GRADER,
            "JUPYTER_CONFIG_PATH": os.pathsep.join([os.path.join(DEPLOY_DIR, "jupyter", "grader"),
                                                    os.path.join(DEPLOY_DIR, "jupyter", "global")]),
            "PATH": PYTHON_BIN + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
        }},
    }},
]
# Tests and `nn-course hub demo` drive the hub through its REST API with a token of their own.
if os.environ.get("NN_HUB_ADMIN_TOKEN"):
    c.JupyterHub.services.append({{"name": "nn-course-admin", "api_token": os.environ["NN_HUB_ADMIN_TOKEN"]}})
    c.JupyterHub.load_roles.append({{
        "name": "nn-course-admin", "services": ["nn-course-admin"],
        "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups", "list:services",
                   "read:services", "access:servers", "access:services"],
    }})

# ------------------------------------------------------------------------------ single-user servers
# Local processes, one per user, run as that Unix user in their home folder. For containers:
#   DockerSpawner (pip install dockerspawner): c.JupyterHub.spawner_class = "docker"; the image
#   needs this course's student environment, and the exchange must be the *same* folder in every
#   container: mount the host's {exchange!r} at the same path (c.DockerSpawner.volumes), keep its
#   permissions (0777 root, inbound 0733) and run each container with the user's own uid, or the
#   walls between students are gone;
#   KubeSpawner (pip install jupyterhub-kubespawner): c.JupyterHub.spawner_class = "kubernetes";
#   the exchange is a ReadWriteMany volume (NFS) mounted in every pod, again with one uid per user
#   (c.KubeSpawner.uid as a callable) -- or replace the filesystem exchange by a server exchange.
#   Either way JUPYTER_CONFIG_PATH below must point at copies of jupyter/ inside the image.
c.JupyterHub.spawner_class = {spawner!r}
c.Spawner.cmd = [os.path.join(PYTHON_BIN, "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.Spawner.environment = {{
    "PATH": PYTHON_BIN + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
    # the kernels cannot import the reference solutions that the instructor's environment holds
    "PYTHONPATH": os.path.join(DEPLOY_DIR, "student-site"),
}}


def course_extensions(spawner):
    """Students get Assignment List + Validate; instructors also the Course List."""
    groups = {{g.name for g in spawner.user.groups}}
    role = "instructor" if f"formgrade-{{COURSE}}" in groups else "student"
    spawner.environment["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [os.path.join(DEPLOY_DIR, "jupyter", role), os.path.join(DEPLOY_DIR, "jupyter", "global")])


c.Spawner.pre_spawn_hook = course_extensions
