"""rollwright: deploy spec in, plain Ansible project out, safe deploys run and recorded."""

__version__ = "0.1.0"
