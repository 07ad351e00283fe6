// MergeBundles: turns several part bundles (one per process, or one per
// shard of a sharded save) into one checkpoint, moving data files instead of
// copying them, as TensorFlow's MergeV2Checkpoints does (FORMAT.md 1.4).
//
// Part i's data files become P.data-<j>-of-<M> (j in first-seen order over
// the parts in the order given, and each part's entries in key order), and a
// new P.index lists every entry with its shard_id rewritten. A partitioned
// tensor may have its full entry in several parts: their slice lists are
// concatenated (in part order).
#ifndef TRACKPOINT_BUNDLE_MERGE_H_
#define TRACKPOINT_BUNDLE_MERGE_H_

#include <string>
#include <vector>

#include "trackpoint/status.h"

namespace trackpoint {

struct MergeOptions {
  // fsync the directory after the data renames, the index before its
  // rename, and the directory again after it.
  bool sync = true;
  // After a successful merge, delete every part's .index and any of its data
  // files that no entry referenced (the others have been moved).
  bool delete_inputs = true;
  // Refuse to merge when the slices of a partitioned tensor overlap or leave
  // part of it uncovered (such a checkpoint could not be read back whole).
  bool check_slices = true;
};

// Merges the bundles at part_prefixes (in that order) into the checkpoint
// at prefix. Nothing is committed unless everything succeeds: an existing
// P.index is deleted first, the data files are renamed next (and renamed
// ones deleted again on failure), and the new index is written under a
// temporary name and renamed last, so a reader that finds P.index finds the
// complete merged checkpoint.
//
// The header's num_shards is the number of data files the merged
// checkpoint has; TensorFlow writes the sum of the parts' num_shards, which
// is the same number unless a part has a data file no entry uses.
//
// Errors: InvalidArgument for an empty list or a part that is the output;
// NotFound for a missing part; DataLoss for a part that cannot be read;
// FailedPrecondition when the parts disagree (byte order, version, the dtype
// or shape of a partitioned tensor), hold the same key twice, or (with
// check_slices) have slices that overlap or do not cover their tensor.
// Thread safety: a free function; merges into different prefixes may run
// concurrently.
Status MergeBundles(const std::vector<std::string>& part_prefixes,
                    const std::string& prefix,
                    const MergeOptions& options = {});

}  // namespace trackpoint

#endif  // TRACKPOINT_BUNDLE_MERGE_H_
