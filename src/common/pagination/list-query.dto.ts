import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

/** Query parameters every tenant-scoped route accepts (the guard reads it). */
export class TenantQueryDto {
  @ApiPropertyOptional({ description: "Tenant to act on; defaults to the key's own" })
  @IsOptional()
  @Matches(/^[A-Za-z0-9_.-]{1,64}$/)
  tenant?: string;
}

/** The list contract of SPEC §4: `limit` (1-1000, default 100) and an opaque `cursor`. */
export class ListQueryDto extends TenantQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit: number = 100;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;
}
