//! The icons, drawn in code: a stack of three layers (what SPFS shows at
//! `/spfs`). In the menu bar they are template images on macOS (black
//! with alpha, so the system tints them for light and dark bars); on
//! Linux they are coloured. The app's own icon (`.icns`) is drawn the
//! same way, larger.

use std::io::Write;

use crate::model::IconState;

/// An RGBA image.
pub struct Image {
    /// Width and height (square).
    pub size: u32,
    /// Row-major RGBA bytes.
    pub rgba: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Rgba(u8, u8, u8, u8);

/// Whether (x, y) is inside layer `k` (0 = bottom) of an icon of `size`,
/// grown by `grow` (a fraction of the layer's size).
fn in_layer(x: f32, y: f32, size: f32, k: usize, grow: f32) -> bool {
    let cx = size / 2.0;
    let cy = size * (0.70 - 0.20 * k as f32);
    let hw = size * 0.42 * (1.0 + grow);
    let hh = size * 0.16 * (1.0 + grow);
    ((x - cx) / hw).abs() + ((y - cy) / hh).abs() <= 1.0
}

fn draw(size: u32, filled: bool, color: Rgba, mark: Option<Rgba>) -> Image {
    let s = size as f32;
    let mut rgba = vec![0u8; (size * size * 4) as usize];
    for py in 0..size {
        for px in 0..size {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            // Layers are drawn bottom up; each one (with a thin gap
            // around it) covers what is below it.
            let mut on = false;
            for k in 0..3 {
                if in_layer(x, y, s, k, 0.14) {
                    on = in_layer(x, y, s, k, 0.0) && (filled || !in_layer(x, y, s, k, -0.35));
                }
            }
            let mut c = if on { Some(color) } else { None };
            // A mark in the lower right corner (the error state).
            if let Some(m) = mark {
                let (mx, my) = (s * 0.80, s * 0.80);
                if ((x - mx).powi(2) + (y - my).powi(2)).sqrt() <= s * 0.19 {
                    c = Some(m);
                }
            }
            if let Some(Rgba(r, g, b, a)) = c {
                let i = ((py * size + px) * 4) as usize;
                if let Some(pixel) = rgba.get_mut(i..i + 4) {
                    pixel.copy_from_slice(&[r, g, b, a]);
                }
            }
        }
    }
    Image { size, rgba }
}

/// The menu-bar icon for `state`, `size` pixels square.
pub fn tray(state: IconState, size: u32, template: bool) -> Image {
    let (black, faint) = (Rgba(0, 0, 0, 255), Rgba(0, 0, 0, 110));
    match (state, template) {
        (IconState::Runtimes(_), true) => draw(size, true, black, None),
        (IconState::Idle, true) => draw(size, false, black, None),
        (IconState::NotRunning, true) => draw(size, false, faint, None),
        (IconState::Error, true) => draw(size, false, black, Some(black)),
        (IconState::Runtimes(_), false) => draw(size, true, Rgba(47, 110, 196, 255), None),
        (IconState::Idle, false) => draw(size, false, Rgba(47, 110, 196, 255), None),
        (IconState::NotRunning, false) => draw(size, false, Rgba(128, 128, 128, 200), None),
        (IconState::Error, false) => draw(
            size,
            false,
            Rgba(128, 128, 128, 255),
            Some(Rgba(210, 40, 40, 255)),
        ),
    }
}

/// The app's icon at `size`: blue layers on a white rounded square.
pub fn app(size: u32) -> Image {
    let mut img = draw(size, true, Rgba(47, 110, 196, 255), None);
    let s = size as f32;
    let r = s * 0.22;
    for py in 0..size {
        for px in 0..size {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            let dx = (r - x).max(x - (s - r)).max(0.0);
            let dy = (r - y).max(y - (s - r)).max(0.0);
            let i = ((py * size + px) * 4) as usize;
            let inside = (dx * dx + dy * dy).sqrt() <= r;
            match img.rgba.get_mut(i..i + 4) {
                Some(pixel) if inside && pixel.get(3) == Some(&0) => {
                    pixel.copy_from_slice(&[250, 250, 250, 255]);
                }
                _ => {}
            }
        }
    }
    img
}

/// The image as PNG.
pub fn png(img: &Image) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.size, img.size);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&img.rgba)?;
    }
    Ok(out)
}

/// The app icon as an `.icns` file: PNGs of 128, 256, 512 and 1024
/// pixels (types `ic07`, `ic08`, `ic09`, `ic10`).
pub fn icns() -> Result<Vec<u8>, png::EncodingError> {
    let mut body = Vec::new();
    for (kind, size) in [
        (b"ic07", 128),
        (b"ic08", 256),
        (b"ic09", 512),
        (b"ic10", 1024),
    ] {
        let data = png(&app(size))?;
        body.extend_from_slice(kind);
        body.extend_from_slice(&((data.len() + 8) as u32).to_be_bytes());
        body.extend_from_slice(&data);
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"icns");
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    let _ = out.write_all(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opaque(img: &Image) -> usize {
        img.rgba.chunks(4).filter(|p| p[3] > 0).count()
    }

    #[test]
    fn each_state_looks_different_and_templates_are_black() {
        let states = [
            IconState::Runtimes(2),
            IconState::Idle,
            IconState::NotRunning,
            IconState::Error,
        ];
        let imgs: Vec<Image> = states.iter().map(|s| tray(*s, 32, true)).collect();
        for (i, a) in imgs.iter().enumerate() {
            assert!(opaque(a) > 50, "state {i} is nearly empty");
            assert!(
                a.rgba.chunks(4).all(|p| p[..3] == [0, 0, 0]),
                "template {i} is not black"
            );
            for b in &imgs[i + 1..] {
                assert_ne!(a.rgba, b.rgba);
            }
        }
        // filled has more ink than outlined
        assert!(opaque(&imgs[0]) > opaque(&imgs[1]));
    }

    #[test]
    fn the_icns_holds_four_pngs() {
        let data = icns().unwrap();
        assert_eq!(&data[..4], b"icns");
        assert_eq!(
            u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize,
            data.len()
        );
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < data.len() {
            kinds.push(String::from_utf8_lossy(&data[at..at + 4]).into_owned());
            let len = u32::from_be_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(&data[at + 8..at + 12], b"\x89PNG");
            at += len;
        }
        assert_eq!(kinds, ["ic07", "ic08", "ic09", "ic10"]);
    }
}
