/* SPDX-License-Identifier: MIT */
/* placeholder: the shim is being written */
