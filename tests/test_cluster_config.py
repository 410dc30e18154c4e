"""yamls/cluster/aws.yaml, checked offline as ``ray up`` checks it before it calls AWS: Ray's defaults for the
provider filled in, then Ray's JSON schema of cluster configs and its rules across keys."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import ROOT

CONFIG = ROOT / 'yamls' / 'cluster' / 'aws.yaml'


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
