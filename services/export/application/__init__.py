"""Use cases of the export service: the job RPCs, running a job, and the worker."""
