"""gantools.viz: grids, interpolation, nearest neighbours, plots and the live dashboard."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import gantools.models as gm
from gantools import viz
from gantools.training import METRICS, GANTrainer, History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_as_unit_detects_the_range_and_shapes():
    signed = np.array([[-1.0, 1.0], [0.0, 0.0]])[None, ..., None]
    np.testing.assert_allclose(viz.as_unit(signed)[0, :, :, 0], [[0, 1], [0.5, 0.5]])
    unit = np.full((2, 3, 3, 3), 0.25)
    np.testing.assert_allclose(viz.as_unit(unit), unit)
    assert viz.as_unit(np.zeros((5, 4, 4))).shape == (5, 4, 4, 1)
    with pytest.raises(ValueError, match=r"\(n, height, width, 1 or 3\)"):
        viz.as_unit(np.zeros((2, 4, 4, 2)))


def test_tile_places_each_image_in_its_cell():
    images = np.stack([np.full((4, 4, 1), v) for v in (0.0, 0.2, 0.4, 0.6, 0.8)])
    grid = viz.tile(images, ncols=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    for i, v in enumerate((0.0, 0.2, 0.4, 0.6, 0.8)):
        r, c = divmod(i, 3)
        np.testing.assert_allclose(grid[1 + 5 * r: 5 + 5 * r, 1 + 5 * c: 5 + 5 * c], v)
    np.testing.assert_allclose(grid[0], 0.5)  # padding
    np.testing.assert_allclose(grid[6:10, 11:15], 0.5)  # the empty sixth cell


def test_save_grid_writes_an_enlarged_png(tmp_path):
    viz.save_grid(np.zeros((4, 8, 8, 3)) - 1.0, tmp_path / "g.png", ncols=2, scale=3)
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (3 * 19, 3 * 19)


def test_image_grid_titles_with_class_names():
    fig = viz.image_grid(np.zeros((3, 8, 8, 1)), labels=[2, 0, 1],
                         class_names=["circle", "square", "triangle"], title="shapes")
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["triangle", "circle", "square"]
    assert fig._suptitle.get_text() == "shapes"


def test_slerp_keeps_the_norm_and_hits_the_ends(rng):
    a = rng.standard_normal(16)
    b = rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = viz.interpolate_latents(a, b, steps=7)
    np.testing.assert_allclose(path[0], a, rtol=1e-5)
    np.testing.assert_allclose(path[-1], b, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-5)
    line = viz.interpolate_latents(a, b, steps=3, spherical=False)
    np.testing.assert_allclose(line[1], (a + b) / 2, rtol=1e-5)


def test_interpolation_strip_runs_the_generator():
    g = gm.dcgan_generator(8, 1, latent_dim=4, width=4, num_classes=3)
    strip = viz.interpolation_strip(g, np.zeros(4), np.ones(4), steps=5, labels=2)
    assert strip.shape == (5, 8, 8, 1)


def test_nearest_neighbours_match_brute_force(rng):
    queries = rng.standard_normal((30, 4, 4, 1)).astype(np.float32)
    refs = rng.standard_normal((200, 4, 4, 1)).astype(np.float32)
    refs[17] = queries[3]  # an exact copy must be found at distance 0
    idx, dist = viz.nearest_neighbours(queries, refs, k=3, chunk=7)
    brute = np.linalg.norm(queries.reshape(30, 1, -1) - refs.reshape(1, 200, -1), axis=-1)
    # Exact indices from two computations (chunked float32 expansion, then a float64
    # re-sort, vs float32 brute force) are well-posed only without near-ties: here the 4
    # nearest distances of every query are >= 5e-4 apart, far above float32 rounding (~1e-6).
    assert np.diff(np.sort(brute, axis=1)[:, :4], axis=1).min() > 1e-4
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1)[:, :3])
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :3], rtol=1e-4, atol=1e-3)
    assert idx[3, 0] == 17 and dist[3, 0] < 1e-3
    with pytest.raises(ValueError, match="same shape"):
        viz.nearest_neighbours(queries, refs[:, :2])
    fig = viz.plot_nearest_neighbours(queries[:4], refs, n=4, k=2)
    assert len(fig.axes) == 4 * 3
    # the labels are the distances nearest_neighbours returns, on the same scale
    labels = [float(ax.get_xlabel()) for ax in fig.axes if ax.get_xlabel()]
    np.testing.assert_allclose(labels, dist[:4, :2].ravel(), atol=0.05 + 1e-9)  # one digit shown


def test_smooth_is_a_trailing_mean_ignoring_nan():
    np.testing.assert_allclose(viz.smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(viz.smooth([1, np.nan, 3], 3), [1, 1, 2])


def _history(n=40):
    h = History()
    rows = np.random.default_rng(0).uniform(0, 1, (n, len(METRICS)))
    h.append(rows)
    h.add_event(20, "mode_collapse", "text")
    return h


def test_plot_history_has_loss_accuracy_and_norm_panels():
    fig = viz.plot_history(_history(), title="run")
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[:3] == ["loss", "accuracy", "gradient norm"]
    assert "penalty" in labels  # non-zero penalty gets its own axis
    assert any(line.get_xdata()[0] == 20 for line in fig.axes[0].lines
               if line.get_linestyle() == ":")


def test_scatter_2d_draws_three_sigma_circles():
    centres = np.array([[0.0, 2.0], [2.0, 0.0]])
    fig = viz.scatter_2d(np.zeros((5, 2)), real=np.ones((5, 2)), centres=centres, sigma=0.1)
    circles = fig.axes[0].patches
    assert len(circles) == 2 and np.isclose(circles[0].radius, 0.3)


def _trainer():
    g, d = gm.mlp_generator(4, (8,)), gm.mlp_discriminator(hidden=(8,))
    trainer = GANTrainer(g, d, seed=0, preview_size=16)
    trainer.history = _history(5)
    return trainer


def test_live_dashboard_falls_back_to_files(tmp_path, capsys):
    dash = viz.LiveDashboard(out_dir=tmp_path / "live", notebook=False,
                             centres=np.zeros((1, 2)), sigma=0.1)
    dash(_trainer())
    assert (tmp_path / "live" / "samples.png").stat().st_size > 0
    assert (tmp_path / "live" / "curves.png").stat().st_size > 0
    assert "pictures updated" in capsys.readouterr().out


def test_live_dashboard_writes_nothing_unless_given_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    dash = viz.LiveDashboard(notebook=False)
    dash(_trainer())
    assert dash.updates == 1 and list(tmp_path.iterdir()) == []
    assert "out_dir" in capsys.readouterr().out


def test_live_dashboard_updates_its_outputs_in_place(monkeypatch):
    from IPython import display as ipd

    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def display(obj, display_id=False):
        assert display_id is True  # updatable: an executed notebook keeps the last state
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(ipd, "display", display)
    dash = viz.LiveDashboard(notebook=True)
    # shown when created: above the progress bar, which fit starts before the first call
    assert len(shown) == 3 and "waiting" in shown[0].data and not updates
    trainer = _trainer()
    dash(trainer)
    assert len(shown) == 3 and len(updates) == 3 and "step" in updates[0].data
    assert updates[1].data[:4] == b"\x89PNG" and updates[2].data[:4] == b"\x89PNG"
    dash(trainer)
    assert len(shown) == 3 and len(updates) == 6 and dash.updates == 2
    assert updates[4].data[:4] == b"\x89PNG"
    assert not viz.in_notebook()


def test_kid_bars_draw_means_seeds_and_the_floor_band():
    results = {"baseline": [{"kid": 0.10, "kid_std": 0.02}, {"kid": 0.14, "kid_std": 0.03}],
               "EMA": {"kid": 0.05, "kid_std": 0.01}}
    fig = viz.plot_kid_bars(results, floor={"kid": -0.01, "kid_std": 0.005}, title="t")
    ax = fig.axes[0]
    widths = sorted(round(p.get_width(), 6) for p in ax.patches if p.get_height() == 0.8)
    assert widths == [0.05, 0.12]  # bar = mean over seeds
    top_down = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()),
                          strict=True),
                      reverse=True)
    assert [label for _, label in top_down] == ["baseline", "EMA"]  # in the given order
    band = [p for p in ax.patches if p.get_height() != 0.8]
    x0, x1 = band[0].get_x(), band[0].get_x() + band[0].get_width()
    # the band is kid ± 2 s.e. in Python floats: float64, no BLAS, off by at most 1e-17
    np.testing.assert_allclose([x0, x1], [-0.02, 0.0], atol=1e-9)
    with pytest.raises(ValueError, match="results is empty"):
        viz.plot_kid_bars({})


def test_image_grid_without_labels_is_one_tiled_picture():
    fig = viz.image_grid(np.zeros((10, 8, 8, 1)), ncols=5, title="grid")
    (ax,) = fig.axes
    (image,) = ax.images
    assert image.get_array().shape == (2 * 9 + 1, 5 * 9 + 1, 3)
    assert ax.get_title() == "grid"


def test_critic_surface_draws_the_critic_values_on_the_square():
    def critic(x):  # f(x) = x₀ - 2 x₁ : values on [-2, 2]² span [-6, 6]
        return x[:, :1] - 2 * x[:, 1:]

    fig = viz.plot_critic_surface(critic, 2.0, points=np.zeros((5, 2)), real=np.ones((5, 2)),
                                  resolution=50, title="linear")
    ax = fig.axes[0]
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_title() == "linear"
    levels = ax.collections[0].levels
    assert levels.min() <= -5.5 and levels.max() >= 5.5  # the grid's extreme values
    plt.close(fig)
    model = gm.mlp_discriminator(hidden=(4,))
    plt.close(viz.plot_critic_surface(model, 1.0, resolution=10))  # Keras: inference mode
    with pytest.raises(ValueError, match="limit must be positive"):
        viz.plot_critic_surface(critic, 0.0)
