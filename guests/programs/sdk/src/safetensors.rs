//! Tensors read by name from an input blob in the [safetensors] format, lazily: [`Index::read`] reads only the
//! header; each `read_*` call reads only the bytes of the tensor (or rows) asked for.
//!
//! The format: a u64 little-endian header length `n`, `n` bytes of JSON mapping each tensor name to its dtype,
//! shape and `data_offsets` (relative to the end of the header), then the data, little-endian, row-major.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

pub use safetensors::Dtype;
use safetensors::tensor::Metadata;
pub use safetensors::tensor::TensorInfo;

use crate::{input_len, read_f32_le, read_range};

/// Largest header accepted (the safetensors crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// A malformed blob, or a tensor that is missing or not what was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for Error {}

/// An f32 tensor read from a blob: its shape and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The header of a safetensors blob: where each tensor lies.
#[derive(Debug)]
pub struct Index {
    blob: u32,
    /// Blob offset of the data section (8 + header length).
    data_start: u64,
    metadata: Metadata,
}

impl Index {
    /// Reads and checks the header of blob `blob`: every tensor's data lies inside the blob and has the size its
    /// dtype and shape say.
    pub fn read(blob: u32) -> Result<Index, Error> {
        let blob_len = input_len(blob).ok_or_else(|| Error(format!("no input blob {blob}")))?;
        if blob_len < 8 {
            return Err(Error(format!("blob {blob}: {blob_len} bytes, too short for a safetensors header")));
        }
        let n = u64::from_le_bytes(read_range(blob, 0, 8).try_into().expect("8 bytes"));
        if n > MAX_HEADER || 8 + n > blob_len {
            return Err(Error(format!("blob {blob}: bad safetensors header length {n} (blob is {blob_len} bytes)")));
        }
        let header = read_range(blob, 8, n as usize);
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| Error(format!("blob {blob}: bad safetensors header: {e}")))?;
        let data_start = 8 + n;
        for (name, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            let numel = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let bits = numel.and_then(|n| n.checked_mul(info.dtype.bitsize()));
            let size_ok = bits.is_some_and(|b| b % 8 == 0 && end.checked_sub(start) == Some(b / 8));
            if !size_ok || data_start + end as u64 > blob_len {
                return Err(Error(format!(
                    "blob {blob}: tensor {name} ({:?} {:?}) has bad data offsets {start}..{end}",
                    info.dtype, info.shape
                )));
            }
        }
        Ok(Index { blob, data_start, metadata })
    }

    /// The blob this index reads from.
    pub fn blob(&self) -> u32 {
        self.blob
    }

    /// Dtype, shape and data offsets of tensor `name`.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.metadata.tensors().into_keys().collect();
        names.sort();
        names
    }

    /// Tensor `name`, which must be F32, with its shape.
    fn f32_info(&self, name: &str) -> Result<&TensorInfo, Error> {
        let info = self.info(name).ok_or_else(|| Error(format!("blob {}: no tensor {name}", self.blob)))?;
        if info.dtype != Dtype::F32 {
            return Err(Error(format!("blob {}: tensor {name} is {:?}, not F32", self.blob, info.dtype)));
        }
        Ok(info)
    }

    /// Reads the whole F32 tensor `name`.
    pub fn read_f32(&self, name: &str) -> Result<F32Tensor, Error> {
        let info = self.f32_info(name)?;
        let mut data = vec![0f32; info.shape.iter().product()];
        read_f32_le(self.blob, self.data_start + info.data_offsets.0 as u64, &mut data);
        Ok(F32Tensor { shape: info.shape.clone(), data })
    }

    /// Checks that tensor `name` is F32 with shape `shape`.
    pub fn check_f32_shape(&self, name: &str, shape: &[usize]) -> Result<(), Error> {
        let info = self.f32_info(name)?;
        if info.shape != shape {
            return Err(Error(format!(
                "blob {}: tensor {name} has shape {:?}, expected {shape:?}",
                self.blob, info.shape
            )));
        }
        Ok(())
    }

    /// Reads F32 tensor `name` checking its shape is `shape`.
    pub fn read_f32_shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Error> {
        self.check_f32_shape(name, shape)?;
        Ok(self.read_f32(name)?.data)
    }

    /// Shape of one row of tensor `name` (all dimensions but the first) and its number of rows.
    fn rows_of(&self, name: &str) -> Result<(&TensorInfo, usize, usize), Error> {
        let info = self.f32_info(name)?;
        let Some((&rows, rest)) = info.shape.split_first() else {
            return Err(Error(format!("blob {}: tensor {name} is a scalar, it has no rows", self.blob)));
        };
        Ok((info, rows, rest.iter().product()))
    }

    /// Blob offset and number of values of the contiguous rows `rows` of F32 tensor `name`, checked.
    fn row_range(&self, name: &str, rows: Range<usize>) -> Result<(u64, usize), Error> {
        let (info, n_rows, row_len) = self.rows_of(name)?;
        if rows.start > rows.end || rows.end > n_rows {
            return Err(Error(format!("blob {}: rows {rows:?} of tensor {name} with {n_rows} rows", self.blob)));
        }
        Ok((self.data_start + (info.data_offsets.0 + rows.start * row_len * 4) as u64, rows.len() * row_len))
    }

    /// Reads rows `rows` (indices along the first dimension, any order, repeats allowed) of F32 tensor `name`,
    /// concatenated: e.g. the embedding-table rows of a sequence's tokens. Reads only those rows.
    pub fn read_f32_rows(&self, name: &str, rows: &[usize]) -> Result<Vec<f32>, Error> {
        let (info, n_rows, row_len) = self.rows_of(name)?;
        let mut data = vec![0f32; rows.len() * row_len];
        for (&row, out) in rows.iter().zip(data.chunks_exact_mut(row_len.max(1))) {
            if row >= n_rows {
                return Err(Error(format!("blob {}: row {row} of tensor {name} with {n_rows} rows", self.blob)));
            }
            let offset = self.data_start + (info.data_offsets.0 + row * row_len * 4) as u64;
            read_f32_le(self.blob, offset, &mut out[..row_len]);
        }
        Ok(data)
    }

    /// Reads the contiguous rows `rows` of F32 tensor `name`, e.g. the first `n` position embeddings.
    pub fn read_f32_row_range(&self, name: &str, rows: Range<usize>) -> Result<Vec<f32>, Error> {
        let (offset, len) = self.row_range(name, rows)?;
        let mut data = vec![0f32; len];
        read_f32_le(self.blob, offset, &mut data);
        Ok(data)
    }

    /// Reads the contiguous rows `rows` of F32 tensor `name` into `out`, which must hold exactly those rows:
    /// for streaming a large tensor through a small buffer that is reused (so a program's memory does not grow,
    /// or change, by the whole tensor).
    pub fn read_f32_row_range_into(&self, name: &str, rows: Range<usize>, out: &mut [f32]) -> Result<(), Error> {
        let n = rows.len();
        let (offset, len) = self.row_range(name, rows)?;
        if out.len() != len {
            return Err(Error(format!(
                "blob {}: {n} rows of tensor {name} are {len} values, the buffer holds {}",
                self.blob,
                out.len()
            )));
        }
        read_f32_le(self.blob, offset, out);
        Ok(())
    }
}
