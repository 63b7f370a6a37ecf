//! Task modules: one file per module.
pub mod edit;
pub mod files;
