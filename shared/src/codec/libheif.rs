//! The part of libheif's C API that mogr encodes with, behind safe owners. libheif-rs (which mogr
//! decodes with) wraps neither `heif_context_add_grid_image` nor `heif_context_add_image_tile`, the
//! only way to write a grid whose picture is smaller than its tiles, and keeps its raw pointers to
//! itself; so the encoder's objects come from libheif-sys here. Errors are libheif's messages.

use libheif_sys as lh;
use std::ffi::{c_void, CStr, CString};
use std::ptr;

pub(super) type Result<T> = std::result::Result<T, String>;

fn check(e: lh::heif_error) -> Result<()> {
    if e.code == lh::heif_error_code_heif_error_Ok {
        return Ok(());
    }
    let message = if e.message.is_null() {
        format!("libheif error {}.{}", e.code, e.subcode)
    } else {
        // SAFETY: libheif's messages are NUL-terminated static or context-owned strings.
        unsafe { CStr::from_ptr(e.message) }
            .to_string_lossy()
            .into_owned()
    };
    Err(message)
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// A file being written: images, their properties and metadata.
pub(super) struct Context(*mut lh::heif_context);

/// An image in a [`Context`]: a whole picture or a grid.
pub(super) struct Handle(*mut lh::heif_image_handle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from libheif and is released once.
        unsafe { lh::heif_image_handle_release(self.0) }
    }
}

impl Context {
    pub fn new() -> Result<Self> {
        // SAFETY: plain allocation; a null pointer is checked.
        let ctx = unsafe { lh::heif_context_alloc() };
        if ctx.is_null() {
            return Err("cannot allocate a libheif context".into());
        }
        Ok(Self(ctx))
    }

    /// The encoder libheif was built with for `format` (x265 for HEVC, aom for AV1).
    pub fn encoder(&self, format: lh::heif_compression_format) -> Result<Encoder> {
        let mut encoder = ptr::null_mut();
        // SAFETY: valid context; the out pointer is written on success.
        check(unsafe { lh::heif_context_get_encoder_for_format(self.0, format, &mut encoder) })?;
        if encoder.is_null() {
            return Err("no encoder for this format".into());
        }
        Ok(Encoder(encoder))
    }

    /// Encodes `image` as the primary picture (with its alpha, when it has one).
    pub fn encode(&mut self, image: &Image, encoder: &mut Encoder) -> Result<Handle> {
        let options = Options::new()?;
        let mut handle = ptr::null_mut();
        // SAFETY: all pointers are live owners; libheif copies what it keeps.
        check(unsafe {
            lh::heif_context_encode_image(self.0, image.raw, encoder.0, options.0, &mut handle)
        })?;
        Ok(Handle(handle))
    }

    /// Adds the primary picture, `width`×`height`, as a grid of `columns`×`rows` tiles that
    /// [`Context::add_tile`] encodes one at a time; tiles may reach past the right and bottom edges.
    pub fn add_grid(&mut self, width: u32, height: u32, columns: u32, rows: u32) -> Result<Handle> {
        let options = Options::new()?;
        let mut handle = ptr::null_mut();
        // SAFETY: valid context and options; the out pointer is written on success.
        check(unsafe {
            lh::heif_context_add_grid_image(
                self.0,
                width,
                height,
                columns,
                rows,
                options.0,
                &mut handle,
            )
        })?;
        Ok(Handle(handle))
    }

    /// Encodes the tile at column `x`, row `y` of `grid`.
    pub fn add_tile(
        &mut self,
        grid: &Handle,
        (x, y): (u32, u32),
        image: &Image,
        encoder: &mut Encoder,
    ) -> Result<()> {
        // SAFETY: all pointers are live owners; libheif copies what it keeps.
        check(unsafe {
            lh::heif_context_add_image_tile(self.0, grid.0, x, y, image.raw, encoder.0)
        })
    }

    pub fn add_exif(&mut self, image: &Handle, exif: &[u8]) -> Result<()> {
        let size = i32::try_from(exif.len()).map_err(|_| "EXIF block too large".to_string())?;
        // SAFETY: the data is read during the call only.
        check(unsafe {
            lh::heif_context_add_exif_metadata(self.0, image.0, exif.as_ptr().cast(), size)
        })
    }

    /// The whole file.
    pub fn write(&mut self) -> Result<Vec<u8>> {
        unsafe extern "C" fn append(
            _ctx: *mut lh::heif_context,
            data: *const c_void,
            size: usize,
            out: *mut c_void,
        ) -> lh::heif_error {
            // SAFETY: `out` is the Vec passed below; libheif hands `size` readable bytes.
            unsafe {
                (*out.cast::<Vec<u8>>())
                    .extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), size));
            }
            lh::heif_error {
                code: lh::heif_error_code_heif_error_Ok,
                subcode: lh::heif_suberror_code_heif_suberror_Unspecified,
                message: c"".as_ptr(),
            }
        }
        let mut writer = lh::heif_writer {
            writer_api_version: 1,
            write: Some(append),
        };
        let mut out = Vec::<u8>::new();
        // SAFETY: the writer and the Vec outlive the call, which is synchronous.
        check(unsafe {
            lh::heif_context_write(self.0, &mut writer, (&mut out as *mut Vec<u8>).cast())
        })?;
        Ok(out)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context came from heif_context_alloc and is freed once, after its handles
        // (which hold their own references to it).
        unsafe { lh::heif_context_free(self.0) }
    }
}

/// Options for every image mogr encodes: alpha is kept (the default is to drop it).
struct Options(*mut lh::heif_encoding_options);

impl Options {
    fn new() -> Result<Self> {
        // SAFETY: plain allocation; a null pointer is checked before the field is written.
        let options = unsafe { lh::heif_encoding_options_alloc() };
        if options.is_null() {
            return Err("cannot allocate encoding options".into());
        }
        // SAFETY: non-null, allocated and initialised by libheif.
        unsafe { (*options).save_alpha_channel = 1 };
        Ok(Self(options))
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: allocated by heif_encoding_options_alloc, freed once.
        unsafe { lh::heif_encoding_options_free(self.0) }
    }
}

/// A value for [`Encoder::set`].
pub(super) enum Value<'a> {
    Int(i32),
    Str(&'a str),
}

pub(super) struct Encoder(*mut lh::heif_encoder);

impl Encoder {
    pub fn set_quality(&mut self, quality: u8) -> Result<()> {
        // SAFETY: valid encoder.
        check(unsafe { lh::heif_encoder_set_lossy_quality(self.0, i32::from(quality.min(100))) })
    }

    /// One of the encoder's named parameters (libheif's, or `x265:<option>` passed to x265).
    pub fn set(&mut self, name: &str, value: Value<'_>) -> Result<()> {
        let c_name = c_string(name)?;
        // SAFETY: valid encoder; the strings live through the call.
        check(match value {
            Value::Int(v) => unsafe {
                lh::heif_encoder_set_parameter_integer(self.0, c_name.as_ptr(), v)
            },
            Value::Str(v) => {
                let c_value = c_string(v)?;
                unsafe {
                    lh::heif_encoder_set_parameter_string(self.0, c_name.as_ptr(), c_value.as_ptr())
                }
            }
        })
        .map_err(|e| format!("parameter {name}: {e}"))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the encoder came from libheif and is released once.
        unsafe { lh::heif_encoder_release(self.0) }
    }
}

/// An 8-bit YCbCr 4:2:0 picture (plus alpha) with the nclx libheif writes by default (BT.601 full
/// range, sRGB primaries), filled by mogr so libheif does no colour conversion of its own.
pub(super) struct Image {
    raw: *mut lh::heif_image,
    height: usize,
}

/// The planes of an [`Image`]: each row `stride` bytes apart.
pub(super) struct Planes<'a> {
    pub y: (&'a mut [u8], usize),
    pub cb: (&'a mut [u8], usize),
    pub cr: (&'a mut [u8], usize),
    pub alpha: Option<(&'a mut [u8], usize)>,
}

impl Image {
    pub fn ycbcr420(width: u32, height: u32, alpha: bool) -> Result<Self> {
        let (w, h) = (
            i32::try_from(width).map_err(|_| "width too large")?,
            i32::try_from(height).map_err(|_| "height too large")?,
        );
        let mut raw = ptr::null_mut();
        // SAFETY: the out pointer is written on success.
        check(unsafe {
            lh::heif_image_create(
                w,
                h,
                lh::heif_colorspace_heif_colorspace_YCbCr,
                lh::heif_chroma_heif_chroma_420,
                &mut raw,
            )
        })?;
        let image = Self {
            raw,
            height: height as usize,
        };
        let (cw, ch) = ((w + 1) / 2, (h + 1) / 2);
        let mut planes = vec![
            (lh::heif_channel_heif_channel_Y, w, h),
            (lh::heif_channel_heif_channel_Cb, cw, ch),
            (lh::heif_channel_heif_channel_Cr, cw, ch),
        ];
        if alpha {
            planes.push((lh::heif_channel_heif_channel_Alpha, w, h));
        }
        for (channel, pw, ph) in planes {
            // SAFETY: valid image; libheif allocates the plane.
            check(unsafe { lh::heif_image_add_plane(image.raw, channel, pw, ph, 8) })?;
        }
        // SAFETY: the profile is allocated, copied by the image and freed here.
        unsafe {
            let nclx = lh::heif_nclx_color_profile_alloc();
            if !nclx.is_null() {
                let set = lh::heif_image_set_nclx_color_profile(image.raw, nclx);
                lh::heif_nclx_color_profile_free(nclx);
                check(set)?;
            }
        }
        Ok(image)
    }

    pub fn set_icc(&mut self, icc: &[u8]) -> Result<()> {
        // SAFETY: libheif copies the profile during the call.
        check(unsafe {
            lh::heif_image_set_raw_color_profile(
                self.raw,
                c"prof".as_ptr(),
                icc.as_ptr().cast(),
                icc.len(),
            )
        })
    }

    pub fn planes(&mut self) -> Result<Planes<'_>> {
        let height = self.height;
        let raw = self.raw;
        let plane = |channel, rows: usize| -> Option<(&mut [u8], usize)> {
            let mut stride = 0usize;
            // SAFETY: a plane of `rows` rows of `stride` bytes, owned by the image, which is
            // borrowed mutably for the planes' lifetime; each channel's memory is distinct.
            unsafe {
                let data = lh::heif_image_get_plane2(raw, channel, &mut stride);
                (!data.is_null())
                    .then(|| (std::slice::from_raw_parts_mut(data, stride * rows), stride))
            }
        };
        let chroma_rows = height.div_ceil(2);
        let missing = || "a plane is missing".to_string();
        Ok(Planes {
            y: plane(lh::heif_channel_heif_channel_Y, height).ok_or_else(missing)?,
            cb: plane(lh::heif_channel_heif_channel_Cb, chroma_rows).ok_or_else(missing)?,
            cr: plane(lh::heif_channel_heif_channel_Cr, chroma_rows).ok_or_else(missing)?,
            alpha: plane(lh::heif_channel_heif_channel_Alpha, height),
        })
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the image came from heif_image_create and is released once.
        unsafe { lh::heif_image_release(self.raw) }
    }
}
