"""REDDIT-BINARY and ZINC loaders: features, per-graph degree CDF, the authors' folds."""

import numpy as np
import pytest
import torch

from dqc.graph_datasets import FOLDS, load_graph_dataset, reddit_fold_indices


def test_zinc_splits_and_features(zinc):
    assert (len(zinc.val), len(zinc.test)) == (1000, 1000)
    graph = zinc.test[0]
    assert graph.x.shape == (graph.num_nodes, 28)
    assert torch.equal(graph.x.sum(1), torch.ones(graph.num_nodes))  # one-hot atom types
    assert graph.y.shape == (1, 1) and zinc.metric == "mae" and zinc.out_channels == 1
    assert 0 < graph.degree_cdf.min() and graph.degree_cdf.max() == 1.0


def test_reddit_folds_follow_the_authors_protocol():
    labels = torch.tensor([0, 1] * 100)
    tests = []
    for fold in range(FOLDS):
        train, val, test = reddit_fold_indices(labels, fold)
        assert not (set(train) & set(val)) and not (set(train) & set(test))
        assert sorted(train + val + test) == list(range(200))
        assert labels[test].float().mean() == 0.5  # stratified
        assert reddit_fold_indices(labels, fold - 1 if fold else FOLDS - 1)[2] == val
        tests.append(set(test))
    assert set().union(*tests) == set(range(200))  # every graph is tested exactly once
    with pytest.raises(ValueError, match="fold"):
        reddit_fold_indices(labels, FOLDS)


def test_reddit_binary_loads_with_normalized_degree(data_root):
    splits = load_graph_dataset("reddit-binary", data_root, fold=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1600, 200, 200)
    features = torch.cat([g.x for g in splits.train + splits.val + splits.test])
    assert features.shape[1] == 1
    assert abs(float(features.mean())) < 1e-3 and abs(float(features.std()) - 1) < 1e-3
    assert np.bincount([int(g.y) for g in splits.test]).tolist() == [100, 100]


def test_unknown_dataset_and_fold_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'imdb-binary'"):
        load_graph_dataset("imdb-binary")
    with pytest.raises(ValueError, match="fold must be in"):
        load_graph_dataset("zinc", fold=-1)
