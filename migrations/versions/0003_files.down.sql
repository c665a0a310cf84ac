DROP TABLE IF EXISTS s_task_file_chunks;
DROP TABLE IF EXISTS s_task_files;
