//! `watermark/2`'s text, drawn with the system's fonts (`ab_glyph`): one line, each character from the
//! font the rule names, or from the CJK font when that font has no glyph for it.
//!
//! COS names its fonts by Windows and macOS file names (`tahoma.ttf`, `simhei黑体.ttf`, ...), which are
//! not free to ship. mogr draws the Latin ones with DejaVu Sans and the Chinese ones with WenQuanYi Micro
//! Hei (Debian's `fonts-dejavu-core` and `fonts-wqy-microhei`, installed by `scripts/setup.sh` on every
//! machine and in the functions' image). A font file on the system may also be named as it is
//! (`DejaVuSerif.ttf`). Fonts are looked for under `MOGR_FONT_DIRS` (colon-separated; default
//! `/usr/share/fonts:/usr/local/share/fonts`) and read once per process.

use crate::rule::TextMark;
use crate::{Error, Result};
use ab_glyph::{point, Font, FontArc, FontVec, GlyphId, PxScale, ScaleFont};
use image::{Rgba, RgbaImage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Drawn for characters the named font lacks (Chinese, Japanese, Korean, and most other scripts).
const CJK_FILE: &str = "wqy-microhei.ttc";
const SANS_FILE: &str = "DejaVuSans.ttf";
const SANS_BOLD_FILE: &str = "DejaVuSans-Bold.ttf";

/// COS's font names (lower-cased) and the file mogr draws each with.
const COS_FONTS: &[(&str, &str)] = &[
    ("tahoma.ttf", SANS_FILE),
    ("arial.ttf", SANS_FILE),
    ("helvetica.dfont", SANS_FILE),
    ("helveticaneue.dfont", SANS_FILE),
    ("ahronbd.ttf", SANS_BOLD_FILE),
    ("ariblk.ttf", SANS_BOLD_FILE),
    ("simfang仿宋.ttf", CJK_FILE),
    ("simfang.ttf", CJK_FILE),
    ("simhei黑体.ttf", CJK_FILE),
    ("simhei.ttf", CJK_FILE),
    ("simkai楷体.ttf", CJK_FILE),
    ("simkai.ttf", CJK_FILE),
    ("simsun宋体.ttc", CJK_FILE),
    ("simsun.ttc", CJK_FILE),
    ("stheiti light华文黑体.ttc", CJK_FILE),
    ("stheiti-light.ttc", CJK_FILE),
    ("stheiti medium.ttc", CJK_FILE),
    ("stheiti-medium.ttc", CJK_FILE),
    ("幼圆.ttf", CJK_FILE),
    ("youyuan.ttf", CJK_FILE),
];

/// The largest text a watermark may draw, in pixels (before it is turned): 16 MP.
pub const MAX_TEXT_PIXELS: u64 = 16 << 20;

/// The size of `mark` drawn, shadow included: checked against [`MAX_TEXT_PIXELS`] (before any pixel
/// is drawn, when a rule is planned).
pub fn measure(mark: &TextMark) -> Result<(u32, u32)> {
    Ok(Layout::of(mark)?.size)
}

/// `mark` drawn on a transparent canvas of [`measure`]'s size.
pub fn render(mark: &TextMark) -> Result<RgbaImage> {
    let layout = Layout::of(mark)?;
    let (w, h) = layout.size;
    let mut coverage = vec![0f32; w as usize * h as usize];
    for (font, glyph) in &layout.glyphs {
        let Some(outline) = font.outline_glyph(glyph.clone()) else {
            continue; // a space
        };
        let bounds = outline.px_bounds();
        outline.draw(|x, y, c| {
            let (px, py) = (
                bounds.min.x as i64 + x as i64,
                bounds.min.y as i64 + y as i64,
            );
            if (0..w as i64).contains(&px) && (0..h as i64).contains(&py) {
                let cell = &mut coverage[py as usize * w as usize + px as usize];
                *cell = (*cell + c).min(1.0);
            }
        });
    }
    let [r, g, b] = mark.fill;
    let shadow = mark.shadow as f32 / 100.0;
    let offset = layout.shadow_offset as i64;
    Ok(RgbaImage::from_fn(w, h, |x, y| {
        let at = |x: i64, y: i64| {
            if x < 0 || y < 0 {
                0.0
            } else {
                coverage[y as usize * w as usize + x as usize]
            }
        };
        let text = at(x as i64, y as i64);
        let dark = at(x as i64 - offset, y as i64 - offset) * shadow;
        // the text over its shadow (black): straight alpha
        let alpha = text + dark * (1.0 - text);
        if alpha <= 0.0 {
            return Rgba([0, 0, 0, 0]);
        }
        let channel = |c: u8| (c as f32 * text / alpha).round() as u8;
        Rgba([
            channel(r),
            channel(g),
            channel(b),
            (alpha * 255.0).round() as u8,
        ])
    }))
}

/// Where each glyph goes, and the canvas they need.
struct Layout {
    glyphs: Vec<(Arc<FontArc>, ab_glyph::Glyph)>,
    size: (u32, u32),
    shadow_offset: u32,
}

impl Layout {
    fn of(mark: &TextMark) -> Result<Layout> {
        let named = fonts().get(font_file(&mark.font)?)?;
        let cjk = fonts().get(CJK_FILE)?;
        let scale = PxScale::from(mark.size as f32);
        let pick = |c: char| -> &Arc<FontArc> {
            if named.glyph_id(c) != GlyphId(0) || cjk.glyph_id(c) == GlyphId(0) {
                &named
            } else {
                &cjk
            }
        };
        // the line's ascent and descent: the largest of the fonts it uses
        let (mut ascent, mut descent) = (0f32, 0f32);
        for font in [&named, &cjk] {
            if mark.text.chars().any(|c| Arc::ptr_eq(pick(c), font)) {
                ascent = ascent.max(font.as_scaled(scale).ascent());
                descent = descent.min(font.as_scaled(scale).descent());
            }
        }
        let mut glyphs = Vec::new();
        let mut caret = 0f32;
        let mut previous: Option<(&Arc<FontArc>, GlyphId)> = None;
        for c in mark.text.chars() {
            let font = pick(c);
            let scaled = font.as_scaled(scale);
            let id = font.glyph_id(c);
            if let Some((f, p)) = previous {
                if Arc::ptr_eq(f, font) {
                    caret += scaled.kern(p, id);
                }
            }
            glyphs.push((
                font.clone(),
                id.with_scale_and_position(scale, point(caret, ascent)),
            ));
            caret += scaled.h_advance(id);
            previous = Some((font, id));
        }
        let shadow_offset = if mark.shadow > 0 {
            (mark.size / 16).max(1)
        } else {
            0
        };
        let w = caret.ceil().max(1.0) as u64 + shadow_offset as u64;
        let h = (ascent - descent).ceil().max(1.0) as u64 + shadow_offset as u64;
        if w * h > MAX_TEXT_PIXELS {
            return Err(Error::invalid(format!(
                "the watermark text would be drawn {w}x{h} pixels, more than the {MAX_TEXT_PIXELS} a \
                 watermark may draw: use a smaller fontsize or a shorter text"
            )));
        }
        Ok(Layout {
            glyphs,
            size: (w as u32, h as u32),
            shadow_offset,
        })
    }
}

/// The file a font name is drawn with: COS's names, or a font file's own name.
fn font_file(name: &str) -> Result<&str> {
    let lower = name.trim().to_lowercase();
    if let Some((_, file)) = COS_FONTS.iter().find(|(n, _)| *n == lower) {
        return Ok(file);
    }
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
        && !name.starts_with('.');
    let known = [".ttf", ".ttc", ".otf", ".otc"]
        .iter()
        .any(|ext| lower.ends_with(ext));
    // a font read before is not looked for again: no folder walk on every request
    if plain && known && (fonts().is_loaded(name) || fonts().find(name).is_some()) {
        return Ok(name);
    }
    Err(Error::invalid(format!(
        "font {:?} is not one mogr draws: name one of COS's fonts (tahoma.ttf, the default; arial.ttf; \
         simhei黑体.ttf; simsun宋体.ttc; ... docs/rules.md#watermarks lists them) or the file name of a \
         font installed on the server (e.g. {SANS_FILE})",
        name.chars().take(60).collect::<String>(),
    )))
}

/// The fonts read so far, by file name.
struct Fonts {
    dirs: Vec<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<FontArc>>>,
}

fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let dirs = crate::env::var("MOGR_FONT_DIRS")
            .unwrap_or_else(|| "/usr/share/fonts:/usr/local/share/fonts".to_string());
        Fonts {
            dirs: std::env::split_paths(&dirs).collect(),
            loaded: Mutex::new(HashMap::new()),
        }
    })
}

impl Fonts {
    fn is_loaded(&self, name: &str) -> bool {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.contains_key(name)
    }

    /// The font in file `name` (the first face of a collection), read on first use.
    fn get(&self, name: &str) -> Result<Arc<FontArc>> {
        if let Some(font) = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(font.clone());
        }
        let path = self.find(name).ok_or_else(|| {
            Error::internal(format!(
                "the font file {name} is not installed under {}: install Debian's fonts-dejavu-core and \
                 fonts-wqy-microhei (scripts/setup.sh does), or point MOGR_FONT_DIRS at a folder holding it",
                std::env::join_paths(&self.dirs)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ))
        })?;
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::internal(format!("reading the font {}: {e}", path.display())))?;
        let font = FontVec::try_from_vec_and_index(bytes, 0).map_err(|e| {
            Error::internal(format!("the font {} is unreadable: {e}", path.display()))
        })?;
        let font = Arc::new(FontArc::new(font));
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), font.clone());
        Ok(font)
    }

    /// The path of font file `name` under the font folders (three levels deep at most).
    fn find(&self, name: &str) -> Option<PathBuf> {
        fn walk(dir: &Path, name: &str, depth: u32) -> Option<PathBuf> {
            let entries = std::fs::read_dir(dir).ok()?;
            let mut folders = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_name().to_str() == Some(name) && path.is_file() {
                    return Some(path);
                }
                if depth > 0 && path.is_dir() {
                    folders.push(path);
                }
            }
            folders.sort();
            folders.iter().find_map(|f| walk(f, name, depth - 1))
        }
        self.dirs.iter().find_map(|d| walk(d, name, 3))
    }
}
