"""Read a target's Ansible inventory (any format ansible-core reads) into groups of host names."""

from __future__ import annotations

from pathlib import Path

from rollwright.errors import BadInput


def inventory_groups(path: Path) -> dict[str, list[str]]:
    """Group name -> host names (inventory order) as ansible-core itself resolves them."""
    if not path.exists():
        raise BadInput(f"{path}: no such inventory")
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
    groups = {name: [h.name for h in group.get_hosts()] for name, group in manager.groups.items()}
    if not groups.get("all"):
        raise BadInput(f"{path}: the inventory has no hosts")
    return groups

