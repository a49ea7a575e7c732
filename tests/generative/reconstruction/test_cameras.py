import numpy as np
import pytest

from generative.reconstruction.cameras import generate_rays, look_at, make_camera, orbit_cameras, project_points


def test_rays_unit_and_through_pixels():
    cam = make_camera([2.0, 1.0, 0.5], [0, 0, 0], width=8, height=6, fov_deg=60)
    o, d = generate_rays(cam)
    assert d.shape == (6, 8, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(o, np.broadcast_to(cam.center, o.shape))
    uv, z = project_points(cam, (o + 3.0 * d).reshape(-1, 3))
    u, v = np.meshgrid(np.arange(8) + 0.5, np.arange(6) + 0.5)
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], -1), atol=1e-9)
    assert np.all(z > 0)


def test_look_at_orthonormal_and_target_on_axis():
    eye, target = np.array([1.0, -2.0, 0.7]), np.array([0.2, 0.1, -0.3])
    R, t = look_at(eye, target)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)
    p = R @ target + t
    np.testing.assert_allclose(p[:2], 0.0, atol=1e-12)
    assert np.isclose(p[2], np.linalg.norm(target - eye))
    np.testing.assert_allclose(R @ eye + t, 0.0, atol=1e-12)
    # world up maps to image up (negative camera y)
    assert (R @ np.array([0, 0, 1.0]))[1] < 0


def test_orbit_radius_and_errors():
    cams = orbit_cameras(5, radius=2.5, elevation_deg=10)
    np.testing.assert_allclose([np.linalg.norm(c.center) for c in cams], 2.5)
    with pytest.raises(ValueError):
        look_at([0, 0, 1], [0, 0, 0])  # up parallel to view
    with pytest.raises(ValueError):
        orbit_cameras(0)
