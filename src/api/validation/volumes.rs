//! `ValidateVolumes` (k8s pkg/apis/core/validation/validation.go) for the volume sources peapod implements:
//! names, emptyDir and hostPath; unimplemented sources are refused in `supported`.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Volume;

use super::{rules, supported};
use crate::api::field::{FieldError, FieldPath};
use crate::api::quantity::{parse_quantity, QUANTITY_FORMAT_ERROR};

const HOST_PATH_TYPES: [&str; 8] = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// `ValidateVolumes`; returns the names of the well-formed volumes, which mounts may reference.
/// Volumes rejected only because peapod does not implement their source still count as defined, so
/// their mounts do not report a second error.
pub(super) fn validate_volumes<'a>(
    volumes: &'a [Volume],
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) -> HashSet<&'a str> {
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        supported::volume(v, &p, errs);
        let mut own = Vec::new();
        volume_source(v, &p, &mut own);
        let name_path = p.child("name");
        rules::required_label(&v.name, &name_path, &mut own);
        if names.contains(v.name.as_str()) {
            own.push(FieldError::duplicate(&name_path, &v.name));
        }
        if own.is_empty() {
            names.insert(v.name.as_str());
        }
        errs.append(&mut own);
    }
    names
}

/// `validateVolumeSource` for the sources peapod implements.
fn volume_source(v: &Volume, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let sources = supported::volume_sources(v);
    if sources.is_empty() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    for (name, _) in sources.iter().skip(1) {
        errs.push(FieldError::forbidden(
            &path.child(name),
            "may not specify more than 1 volume type",
        ));
    }
    match sources.first() {
        Some(("emptyDir", _)) => empty_dir(v, &path.child("emptyDir"), errs),
        Some(("hostPath", _)) => host_path(v, &path.child("hostPath"), errs),
        _ => {}
    }
}

fn empty_dir(v: &Volume, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(source) = &v.empty_dir else {
        return;
    };
    if let Some(medium) = source
        .medium
        .as_deref()
        .filter(|m| !m.is_empty() && *m != "Memory")
    {
        errs.push(FieldError::not_supported(
            &path.child("medium"),
            medium,
            &["", "Memory"],
        ));
    }
    let Some(size) = &source.size_limit else {
        return;
    };
    let size_path = path.child("sizeLimit");
    match parse_quantity(&size.0) {
        None => errs.push(FieldError::invalid(&size_path, &size.0, QUANTITY_FORMAT_ERROR)),
        Some(q) if q.is_negative() => {
            errs.push(FieldError::forbidden(
                &size_path,
                "SizeLimit field must be a valid resource quantity",
            ));
        }
        Some(q) if q.is_zero() => errs.push(FieldError::invalid(
            &size_path,
            &size.0,
            "must be greater than zero",
        )),
        Some(_) => {}
    }
}

fn host_path(v: &Volume, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(source) = &v.host_path else {
        return;
    };
    let path_path = path.child("path");
    if source.path.is_empty() {
        errs.push(FieldError::required(&path_path, ""));
        return;
    }
    if rules::has_backsteps(&source.path) {
        errs.push(FieldError::invalid(
            &path_path,
            &source.path,
            "must not contain '..'",
        ));
    }
    if !source.path.starts_with('/') {
        errs.push(FieldError::invalid(
            &path_path,
            &source.path,
            "must be an absolute path",
        ));
    }
    if let Some(kind) = source.type_.as_deref().filter(|t| !HOST_PATH_TYPES.contains(t)) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            kind,
            &HOST_PATH_TYPES,
        ));
    }
}
