//! COS's wire formats: the `Pic-Operations` header ([`pic_operations`]) and the XML bodies ([`xml`],
//! [`multipart`], [`list`]).

pub mod delete;
pub mod list;
pub mod multipart;
pub mod pic_operations;
pub mod xml;

pub use pic_operations::{resolve_fileid, PicOperations, PicRule, MAX_RULES};
pub use xml::{
    copy_result_xml, error_xml, report_xml, upload_result_xml, OriginalInfo, ProcessResult,
};
