"""The cluster extra and yamls/cluster/aws.yaml: Ray installed at its pin beside Composer's pins, and the cluster
config checked offline as ``ray up`` checks it before it calls AWS (Ray's defaults for the provider filled in, then
Ray's JSON schema of cluster configs and its rules across keys)."""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib import metadata

import pytest
import yaml
from conftest import ROOT

CONFIG = ROOT / 'yamls' / 'cluster' / 'aws.yaml'


def test_ray_is_installed_in_one_resolve_with_composers_pins():
    pytest.importorskip('ray', reason="the cluster extra: pip install -e '.[cluster]'")
    from packaging.requirements import Requirement

    assert metadata.version('ray') == '2.60.0'
    [pin] = [r for r in map(Requirement, metadata.requires('mosaicml') or []) if r.name == 'packaging']
    assert metadata.version('packaging') in pin.specifier  # ray[default] alone would have lifted it to 26.x
    check = subprocess.run([sys.executable, '-m', 'pip', 'check'], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout


def prepared(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(config))
    validate_config(config)
    return config


def test_the_aws_cluster_passes_rays_own_checks_and_has_what_a_study_needs():
    pytest.importorskip('ray', reason="the cluster extra: pip install -e '.[cluster]'")
    config = yaml.safe_load(CONFIG.read_text())
    full = prepared(config)
    nodes = full['available_node_types']
    head = nodes[full['head_node_type']]
    assert full['provider']['type'] == 'aws' and head['resources'] == {'CPU': 0}  # no run on the head
    workers = {name: node for name, node in nodes.items() if name != full['head_node_type']}
    assert {node['node_config']['InstanceType'] for node in workers.values()} == {'p4d.24xlarge', 'p5.48xlarge'}
    for node in workers.values():
        assert node['resources']['GPU'] == 8 and node['node_config']['InstanceMarketOptions'] == {'MarketType': 'spot'}
        assert 'Arn' in node['node_config']['IamInstanceProfile'] and node['min_workers'] <= node['max_workers']
    assert all(node['node_config']['ImageId'].startswith('ami-') for node in nodes.values())
    assert full['file_mounts'] == {'~/pastrun': '.'} and any('make .venv/.installed' in c for c in full['setup_commands'])
    assert sum(node['max_workers'] for node in workers.values()) <= full['max_workers']


def test_rays_checks_refuse_a_broken_cluster_config():
    pytest.importorskip('ray', reason="the cluster extra: pip install -e '.[cluster]'")
    import jsonschema

    config = yaml.safe_load(CONFIG.read_text())
    wrong = {**config, 'head_node_type': 'gpu'}
    with pytest.raises(ValueError, match='head_node_type'):
        prepared(wrong)
    with pytest.raises(jsonschema.ValidationError):
        prepared({**config, 'idle_timeout_minutes': 'ten'})
