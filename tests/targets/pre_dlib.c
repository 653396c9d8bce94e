/* SPDX-License-Identifier: MIT */
/* pre_dlib: a library found only through pre_dlopen's DT_RUNPATH. */
int pre_dlib_answer(void)
{
	return 42;
}
