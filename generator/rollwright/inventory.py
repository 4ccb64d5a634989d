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


def pick_hosts(asked: list[str], known: list[str], what: str) -> list[str]:
    """The hosts of `known` that `asked` names (names or comma-separated lists; all of `known` when it names
    none), in `known`'s order; BadInput naming any that is not one of them (`what`: "an app host of target x")."""
    names = [name.strip() for item in asked for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadInput(f"{', '.join(unknown)}: not {what} (those are: {', '.join(known) or 'none'})")
    return [host for host in known if host in names] if names else list(known)
