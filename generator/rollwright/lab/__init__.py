"""The local lab: a fleet of real Debian 12 hosts (systemd-nspawn in network namespaces) on this machine.

The public entry point is `rollwright.lab.fleet.Lab`; `rollwright lab ...` is its command line.
"""
