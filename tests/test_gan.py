"""DCGAN: shapes and ranges, the losses on hand cases, seeded steps that lower them, the GAN recipe."""

import dataclasses
import math

import pytest
import torch

from course_lib.models.gan import Discriminator, Generator, discriminator_loss, generator_loss
from course_lib.recipes import shapes_gan


def small_pair(width=4, z_dim=8):
    torch.manual_seed(0)
    return Generator(z_dim=z_dim, width=width), Discriminator(width=width)


def test_generator_shapes_ranges_and_named_layers():
    generator, _ = small_pair()
    z = torch.randn(3, 8)
    images = generator(z)
    assert images.shape == (3, 3, 64, 64)
    assert images.min() >= 0 and images.max() <= 1
    assert generator.layers == ("layer1", "layer2", "layer3", "layer4")
    sides = []
    x = z[:, :, None, None]
    for name in generator.layers:
        x = getattr(generator, name)(x)
        sides.append((x.shape[1], x.shape[2]))
    assert sides == [(32, 4), (16, 8), (8, 16), (4, 32)]  # channels 8w..w, sides 4..32


def test_generator_output_is_the_documented_tanh_conversion():
    generator, _ = small_pair()
    generator.eval()
    z = torch.randn(2, 8)
    x = z[:, :, None, None]
    for name in generator.layers:
        x = getattr(generator, name)(x)
    torch.testing.assert_close(generator(z), (torch.tanh(generator.output(x)) + 1) / 2)


def test_discriminator_gives_one_logit_per_image_and_maps_inputs_to_minus_one_one():
    _, discriminator = small_pair()
    discriminator.eval()
    images = torch.rand(5, 3, 64, 64)
    assert discriminator(images).shape == (5,)
    x = 2 * images - 1  # the documented [0, 1] -> [-1, 1]
    for name in ("layer1", "layer2", "layer3", "layer4", "output"):
        x = getattr(discriminator, name)(x)
    torch.testing.assert_close(discriminator(images), x.flatten())


def test_bad_inputs_are_rejected():
    generator, discriminator = small_pair()
    with pytest.raises(ValueError, match=r"z: expected a Tensor\[B, 8\], got shape \(2, 7\)"):
        generator(torch.randn(2, 7))
    with pytest.raises(TypeError, match="z: expected a torch.Tensor"):
        generator([0.0] * 8)
    with pytest.raises(ValueError, match="images: expected a Tensor"):
        discriminator(torch.rand(2, 3, 32, 32))
    with pytest.raises(TypeError, match="width: expected an int"):
        Generator(width=2.5)


def test_losses_on_hand_cases():
    zero = torch.zeros(4)
    torch.testing.assert_close(discriminator_loss(zero, zero), torch.tensor(2 * math.log(2)))
    torch.testing.assert_close(generator_loss(zero), torch.tensor(math.log(2)))
    # D(x) = sigmoid(2) on real, sigmoid(-1) on fake: -log sigmoid(2) - log(1 - sigmoid(-1)).
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(1 - 1 / (1 + math.exp(1)))
    torch.testing.assert_close(discriminator_loss(real, fake), torch.tensor(expected))
    torch.testing.assert_close(generator_loss(fake), torch.tensor(-math.log(1 / (1 + math.exp(1)))))
    # Averaged over each batch: two equal logits give the loss of one.
    torch.testing.assert_close(generator_loss(torch.tensor([-1.0, -1.0])), generator_loss(fake))


def test_losses_stay_finite_for_extreme_logits_and_empty_batches():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(discriminator_loss(big, big)) and torch.isfinite(generator_loss(big))
    torch.testing.assert_close(generator_loss(torch.tensor([-1e4])), torch.tensor(1e4))
    empty = torch.zeros(0)
    assert generator_loss(empty).item() == 0.0
    torch.testing.assert_close(discriminator_loss(empty, torch.zeros(2)), torch.tensor(math.log(2)))


def test_one_discriminator_step_lowers_its_loss_on_the_same_batch():
    generator, discriminator = small_pair()
    real = torch.rand(8, 3, 64, 64) * 0.2 + 0.8  # bright "scenes"
    with torch.no_grad():
        fake = generator(torch.randn(8, 8))
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(3):
        loss = discriminator_loss(discriminator(real), discriminator(fake))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[2] < losses[0]


def test_generator_steps_lower_its_loss_against_a_fixed_discriminator():
    generator, discriminator = small_pair()
    discriminator.eval().requires_grad_(False)
    z = torch.randn(8, 8)
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(3):
        loss = generator_loss(discriminator(generator(z)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[2] < losses[0]


def test_gan_step_moves_both_networks_and_leaves_the_discriminator_trainable():
    generator, discriminator = small_pair()
    optimizer = torch.optim.AdamW(
        [{"params": generator.parameters()}, {"params": discriminator.parameters()}], lr=1e-3, weight_decay=0
    )
    before_g = [p.detach().clone() for p in generator.parameters()]
    before_d = [p.detach().clone() for p in discriminator.parameters()]
    torch.manual_seed(1)
    losses = shapes_gan.gan_step(generator, discriminator, optimizer, torch.rand(4, 3, 64, 64))
    assert set(losses) == {"discriminator", "generator"}
    assert all(torch.isfinite(value) for value in losses.values())
    assert all(not torch.equal(a, b) for a, b in zip(before_g, generator.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, discriminator.parameters(), strict=True))
    assert all(p.requires_grad for p in discriminator.parameters())


def test_gan_step_updates_the_discriminator_once_not_twice():
    # Regression guard: G's backward reaches D's weights; D must stay frozen for G's step.
    generator, discriminator = small_pair()
    optimizer = torch.optim.SGD(
        [{"params": generator.parameters()}, {"params": discriminator.parameters()}], lr=0.1
    )
    real = torch.rand(4, 3, 64, 64)
    state = {name: value.clone() for name, value in discriminator.state_dict().items()}
    generator_state = {name: value.clone() for name, value in generator.state_dict().items()}
    torch.manual_seed(3)
    shapes_gan.gan_step(generator, discriminator, optimizer, real)
    after = [p.detach().clone() for p in discriminator.parameters()]
    # Replay D's step alone from the same state and noise.
    discriminator.load_state_dict(state)
    generator.load_state_dict(generator_state)
    torch.manual_seed(3)
    fake = generator(torch.randn(4, 8)).detach()
    loss = discriminator_loss(discriminator(real), discriminator(fake))
    manual = torch.optim.SGD(discriminator.parameters(), lr=0.1)
    manual.zero_grad()
    loss.backward()
    manual.step()
    for a, b in zip(after, discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_precision_recall_coverage_on_hand_cases():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every real ball has radius 1
    near = torch.tensor([[0.5], [1.5], [10.0], [11.0]])  # two fakes among the reals, two far away
    metrics = shapes_gan.precision_recall(real, near, k=1)
    assert metrics["precision"] == 0.5  # 0.5 and 1.5 lie in real balls
    assert metrics["coverage"] == 0.75  # balls of 0, 1, 2 hold a fake; 3's ball [2, 4] holds none
    # fake balls (k = 1): 0.5 and 1.5 radius 1, 10 and 11 radius 1: reals 0, 1, 2 are inside
    assert metrics["recall"] == 0.75
    same = shapes_gan.precision_recall(real, real, k=1)
    assert same == {"precision": 1.0, "recall": 1.0, "coverage": 1.0}
    no_balls = shapes_gan.precision_recall(real[:1], near, k=1)  # one real point: no k-th neighbour
    assert no_balls == {"precision": 0.0, "recall": 0.0, "coverage": 0.0}


def test_recipe_defines_what_the_zoo_needs():
    for name in ("CONFIG", "SPLIT", "QUICK_SIZE", "build", "train", "evaluate"):
        assert hasattr(shapes_gan, name)
    generator = shapes_gan.build()
    assert isinstance(generator, Generator) and generator.z_dim == shapes_gan.Z_DIM
    assert shapes_gan.CONFIG.batch_size == 32 and shapes_gan.CONFIG.warmup_steps == 0


def test_gan_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    images = torch.rand(6, 3, 64, 64)
    monkeypatch.setattr(shapes_gan, "segmentation_scenes", lambda split, limit=None: (images.clone(), None))
    monkeypatch.setattr(shapes_gan, "WIDTH", 4)
    config = dataclasses.replace(shapes_gan.CONFIG, batch_size=2, epochs=2)
    whole, history = shapes_gan.train(None, config, progress=False)
    path = tmp_path / "state.safetensors"
    shapes_gan.train(path, dataclasses.replace(config, max_steps=4), progress=False, checkpoint_every=2)
    resumed, resumed_history = shapes_gan.train(path, config, progress=False)
    assert len(history) == 6 and [row["loss"] for row in history] == [row["loss"] for row in resumed_history]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not whole.training


def test_diff_augment_keeps_shape_lets_gradients_through_and_handles_empty():
    from course_lib.models.gan import diff_augment

    torch.manual_seed(0)
    images = torch.rand(5, 3, 16, 16, requires_grad=True)
    out = diff_augment(images)
    assert out.shape == images.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert diff_augment(torch.zeros(0, 3, 16, 16)).shape == (0, 3, 16, 16)
    with pytest.raises(ValueError, match="Tensor\\[B, 3, H, W\\]"):
        diff_augment(torch.rand(3, 16, 16))


def test_diff_augment_without_colour_change_shifts_and_cuts_whole_pixels(monkeypatch):
    from course_lib.models import gan

    torch.manual_seed(1)
    images = torch.rand(4, 3, 8, 8)
    # rand -> 0.5 makes brightness + 0, saturation x 1, contrast x 1: only the shift and the hole remain.
    monkeypatch.setattr(gan.torch, "rand", lambda shape, **kw: torch.full(shape, 0.5))
    out = gan.diff_augment(images, translation=0.25, cutout=0.25)
    for image, augmented in zip(images, out, strict=True):
        grey = (augmented - 0.5).abs().amax(dim=0) < 1e-6  # shifted-in or cut-out pixels
        kept = augmented[:, ~grey]
        # every kept pixel is some pixel of the original image, unchanged
        originals = image.reshape(3, -1).T
        for pixel in kept.T:
            assert (originals - pixel).abs().amax(dim=1).min() < 1e-6
        assert grey.sum() >= 4  # at least the 2 x 2 hole


def test_update_average_moves_parameters_by_one_minus_decay_and_leaves_buffers():
    from course_lib.models.gan import update_average

    average, model = Generator(z_dim=4, width=2), Generator(z_dim=4, width=2)
    before = [p.clone() for p in average.parameters()]
    buffers = [b.clone() for b in average.buffers()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    update_average(average, model, decay=0.75)
    for old, new, target in zip(before, average.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * target)
    for old, new in zip(buffers, average.buffers(), strict=True):
        assert torch.equal(old, new)


def test_recalibrate_batch_norm_sets_the_plain_mean_of_the_samples_statistics():
    from course_lib.models.gan import recalibrate_batch_norm

    torch.manual_seed(0)
    generator = Generator(z_dim=4, width=2)
    recalibrate_batch_norm(generator, batches=3, batch_size=5, seed=7)
    assert not generator.training
    norm = generator.layer1[1]
    noise = torch.Generator().manual_seed(7)
    means = []
    with torch.no_grad():
        for _ in range(3):
            z = generator.sample_z(5, generator=noise)
            pre = generator.layer1[0](z[:, :, None, None])  # (5, 16, 4, 4), before the batch norm
            means.append(pre.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(norm.running_mean, torch.stack(means).mean(dim=0))
    assert norm.momentum == 0.1  # restored
