"""Built-in canvases and the typed fleet."""

import pytest

from canvas_engineering import compile_schema
from canvas_engineering.spec.canvases import PRESETS, fleet


def test_builtin_canvases_validate_and_keep_the_seed_sizes():
    sizes = {name: make().layout.num_positions for name, make in PRESETS.items()}
    assert sizes == {"robot": 5 * 8 * 8, "computer_use": 16_384, "multi_robot": 4 * 8 * 8}


def test_fleet_compiles_to_one_region_per_field_and_vehicle_summary():
    bound = compile_schema(fleet(3), d_model=16)
    # dispatch + per vehicle: its 4×4 summary and camera, lidar, plan, action
    assert len(bound.layout.regions) == 1 + 3 * 5
    assert "vehicles[2].camera" in bound.layout.regions


@pytest.mark.parametrize("bad", [0, -2, 1.5, "50"])
def test_fleet_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match=r"n_vehicles: got .*expected an int >= 1"):
        fleet(bad)
